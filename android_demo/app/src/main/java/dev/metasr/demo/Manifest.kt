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
    /** A routed artifact's router and experts (model.graph "routed"); null for a plain artifact. */
    val routing: Routing? = null,
) {
    val engineKind: EngineKind get() = EngineKind.forTarget(target)

    /** (height, width) of the first exported input size: the tile the model is fed. */
    val inputSize: Pair<Int, Int> get() = imageShapes[0][2] to imageShapes[0][3]

    /**
     * Whether [artifact] is the file this manifest hashed (SHA-256 over the file name, then its bytes). A routed
     * artifact's hash covers every file its routing names, found beside [artifact].
     */
    fun matches(artifact: File): Boolean {
        val files = routing?.files?.map { File(artifact.parentFile, it) } ?: return sha256(artifact) == modelSha256
        return combinedSha256(files) == modelSha256
    }

    private fun sha256(artifact: File): String {
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
        return digest.digest().joinToString("") { "%02x".format(it) }
    }

    /** metasr.validate.report.combined_sha256: in name order, each file's name, then its own hash in hex. */
    private fun combinedSha256(files: List<File>): String {
        val digest = MessageDigest.getInstance("SHA-256")
        for (file in files.sortedBy { it.name }) {
            digest.update(file.name.toByteArray(Charsets.UTF_8))
            digest.update(sha256(file).toByteArray(Charsets.UTF_8))
        }
        return digest.digest().joinToString("") { "%02x".format(it) }
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
                routing = json.optJSONObject("routing")?.let { parseRouting(it, strength != null) },
            )
        }

        /**
         * The `routing` section: the router (thumbnail and strength in, scores out) and the experts, in order.
         * [hasStrength]: whether the top-level inputs list the strength (its shape and default come from there).
         */
        private fun parseRouting(routing: JSONObject, hasStrength: Boolean): Routing {
            val blending = routing.getString("blending")
            require(blending == Routing.HARD) {
                "routing blending '$blending' is unknown to this app (only '${Routing.HARD}')"
            }
            val router = routing.getJSONObject("router")
            val inputs = router.getJSONArray("inputs")
            tensor(inputs, IMAGE_INPUT)
            val routerInputs = (0 until inputs.length()).map { inputs.getJSONObject(it).getString("name") }
            require(routerInputs.all { it == IMAGE_INPUT || it == STRENGTH_INPUT }) {
                "the router takes $routerInputs; this app feeds only '$IMAGE_INPUT' and '$STRENGTH_INPUT'"
            }
            require(STRENGTH_INPUT !in routerInputs || hasStrength) {
                "the router takes '$STRENGTH_INPUT' but the manifest's inputs do not list it; re-export"
            }
            val output = router.getJSONObject("output")
            require(output.getString("name") == OUTPUT) { "the router's output must be named '$OUTPUT'" }
            val list = routing.getJSONArray("experts")
            val experts = (0 until list.length()).map(list::getJSONObject).map { expert ->
                RoutedFunction(expert.getString("function"), expert.getString("file"))
            }
            val scores = shapes(output)[0] // [1, K, H / tile, W / tile]
            require(scores[1] == experts.size) {
                "the router scores ${scores[1]} experts but the manifest lists ${experts.size}; re-export"
            }
            return Routing(
                tile = routing.getInt("tile"),
                thumbnail = routing.getInt("thumbnail"),
                router = RoutedFunction(router.getString("function"), router.getString("file")),
                routerInputs = routerInputs,
                experts = experts,
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

/** One function of a routed artifact: its own file (ONNX), or a method of that name in the shared .pte. */
class RoutedFunction(val function: String, val file: String)

/**
 * `routing` of a routed artifact: per app tile, [router] reads the thumbnail (every [thumbnail]-th pixel of each row
 * and column) and the strength, and scores every expert for each [tile] x [tile] block of the tile; the block's
 * output comes from the expert with the lowest score ([RoutedDispatch]).
 */
class Routing(
    val tile: Int,
    val thumbnail: Int,
    val router: RoutedFunction,
    /** The router's input names in call order (ExecuTorch feeds them by position): image, strength. */
    val routerInputs: List<String>,
    val experts: List<RoutedFunction>,
) {
    /** Every file the artifact needs, each once (one .pte holds all methods; ONNX writes a file per function). */
    val files: List<String> get() = (listOf(router) + experts).map { it.file }.distinct()

    companion object {
        /** The one blending the exporter writes: each block from exactly one expert. */
        const val HARD = "hard"
    }
}
