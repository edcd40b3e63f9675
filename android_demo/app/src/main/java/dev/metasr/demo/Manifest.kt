package dev.metasr.demo

import org.json.JSONArray
import org.json.JSONObject
import java.io.File
import java.security.MessageDigest

/**
 * `manifest.json`, written by `metasr-export` beside every artifact
 * (toolkit/metasr/validate/report.py, schema toolkit/metasr/schemas/manifest.schema.json).
 */
class ModelManifest(
    val target: String,
    val file: String,
    val modelSha256: String,
    val scale: Int,
    /** Every exported image input shape, [1, 3, H, W]; static-shape targets run only these. */
    val imageShapes: List<IntArray>,
    /** [1, 1, 1, 1]: one restoration strength per call; null for a bare student, which takes the image alone. */
    val strengthShape: IntArray?,
    /** The value to feed when the user picks none: -1, "use the degradation degree the model estimates". */
    val defaultStrength: Float,
    val tileSize: Int,
    val tileOverlap: Int,
    /** onnx / onnx-qnn only: "CPUExecutionProvider" or "QNNExecutionProvider". */
    val executionProvider: String?,
    /** onnx-qnn only: the QNN backend the model was validated on ("htp"). */
    val qnnBackend: String?,
    /** onnx-qnn only: a pre-compiled EPContext model beside the QDQ model, if the recipe asked for one. */
    val contextModelFile: String?,
) {
    val engineKind: EngineKind get() = EngineKind.forTarget(target)

    /** (height, width) of the first exported input size: the tile the model is fed. */
    val inputSize: Pair<Int, Int> get() = imageShapes[0][2] to imageShapes[0][3]

    /** Whether [artifact] is the file this manifest hashed (SHA-256 over the file name, then its bytes). */
    fun matches(artifact: File): Boolean {
        val digest = MessageDigest.getInstance("SHA-256")
        digest.update(artifact.name.toByteArray(Charsets.UTF_8))
        artifact.inputStream().use { stream ->
            val buffer = ByteArray(1 shl 16)
            while (true) {
                val n = stream.read(buffer)
                if (n < 0) break
                digest.update(buffer, 0, n)
            }
        }
        return digest.digest().joinToString("") { "%02x".format(it) } == modelSha256
    }

    companion object {
        const val FILE_NAME = "manifest.json"
        const val SCHEMA_VERSION = 3
        const val IMAGE_INPUT = "image"
        const val STRENGTH_INPUT = "strength"
        const val OUTPUT = "output"

        fun load(file: File): ModelManifest = parse(JSONObject(file.readText()))

        fun parse(json: JSONObject): ModelManifest {
            val version = json.getInt("schema_version")
            require(version == SCHEMA_VERSION) {
                "manifest schema_version $version is not $SCHEMA_VERSION; update the app or re-export"
            }
            val inputs = json.getJSONArray("inputs")
            val image = tensor(inputs, IMAGE_INPUT)
            require(image.getString("layout") == "NCHW") { "image input must be NCHW" }
            val strength = optionalTensor(inputs, STRENGTH_INPUT) // absent for a bare student
            val strengthShape = strength?.let { shapes(it)[0] }
            require(strengthShape == null || strengthShape.fold(1, Int::times) == 1) {
                "strength input must hold one value, not ${strengthShape?.toList()}"
            }
            tensor(json.getJSONArray("outputs"), OUTPUT) // the output must exist under its contracted name
            val tile = json.getJSONObject("tile")
            return ModelManifest(
                target = json.getString("target"),
                file = json.getString("file"),
                modelSha256 = json.getString("model_sha256"),
                scale = json.getInt("scale"),
                imageShapes = shapes(image),
                strengthShape = strengthShape,
                defaultStrength = strength?.getDouble("default")?.toFloat() ?: NO_STRENGTH,
                tileSize = tile.getInt("size"),
                tileOverlap = tile.getInt("overlap"),
                executionProvider = json.optStringOrNull("execution_provider"),
                qnnBackend = json.optStringOrNull("backend"),
                contextModelFile = json.optJSONObject("context_model")?.getString("file"),
            )
        }

        /** What [defaultStrength] reads for an artifact without a strength input (it is never fed). */
        const val NO_STRENGTH = -1f

        private fun tensor(list: JSONArray, name: String): JSONObject =
            optionalTensor(list, name) ?: throw IllegalArgumentException("manifest has no tensor named '$name'")

        private fun optionalTensor(list: JSONArray, name: String): JSONObject? =
            (0 until list.length()).map(list::getJSONObject).firstOrNull { it.getString("name") == name }

        private fun shapes(tensor: JSONObject): List<IntArray> {
            val shapes = tensor.getJSONArray("shapes")
            return (0 until shapes.length()).map { i ->
                val dims = shapes.getJSONArray(i)
                IntArray(dims.length(), dims::getInt)
            }
        }

        private fun JSONObject.optStringOrNull(key: String): String? =
            if (has(key) && !isNull(key)) getString(key) else null
    }
}
