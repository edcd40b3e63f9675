package dev.metasr.demo

import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor
import java.io.File

/** A `.pte` (XNNPACK or Vulkan delegate) run through ExecuTorch's Android library. */
class ExecuTorchEngine(override val manifest: ModelManifest, artifact: File) : SrEngine {
    private val module: Module = Module.load(artifact.absolutePath)
    private val strengthShape = manifest.strengthShape?.let { shape -> LongArray(shape.size) { shape[it].toLong() } }
    override val backend: String
    override var strength: Float = manifest.defaultStrength

    init {
        val status = module.loadMethod(METHOD)
        check(status == 0) {
            "ExecuTorch could not load '$METHOD' from ${artifact.name} (error 0x${status.toString(16)}); " +
                "a Vulkan .pte needs an AAR built with the Vulkan backend (see README)"
        }
        backend = module.getMethodMetadata(METHOD).backends.joinToString("+").ifEmpty { "portable" }
    }

    override fun run(input: FloatArray, height: Int, width: Int): FloatArray {
        val image = Tensor.fromBlob(input, longArrayOf(1, 3, height.toLong(), width.toLong()))
        // the manifest's input_order: (image, strength), or (image) for a bare student
        val inputs = listOfNotNull(image, strengthShape?.let { Tensor.fromBlob(floatArrayOf(strength), it) })
        val outputs = module.forward(*inputs.map(EValue::from).toTypedArray())
        check(outputs.isNotEmpty()) { "ExecuTorch '$METHOD' returned nothing; see logcat tag ExecuTorch" }
        return outputs[0].toTensor().dataAsFloatArray
    }

    override fun close() = module.destroy()

    companion object {
        /** The method `metasr-export` writes into every .pte. */
        const val METHOD = "forward"
    }
}
