import Foundation
@testable import MetaSRKit

/// A Core ML manifest as `metasr-export --target coreml` writes it (tests/test_demo_apps.py validates this JSON
/// against toolkit/metasr/schemas/manifest.schema.json).
enum Fixtures {
    static let manifestJSON = #"""
    {
      "activations": "fp16",
      "compute_units": "CPU_AND_NE",
      "enumerated_shapes": [[1, 3, 256, 256], [1, 3, 512, 512]],
      "file": "metasr_x2.mlpackage",
      "format": "mlpackage (ML program)",
      "inputs": [
        {
          "color": "RGB",
          "dtype": "uint8",
          "layout": "image",
          "name": "image",
          "pixel_buffer": "CVPixelBuffer, 8 bits per channel",
          "scale": "1/255, baked into the model",
          "shapes": [[1, 3, 256, 256], [1, 3, 512, 512]],
          "value_range": [0, 255]
        },
        {
          "channels_per_stage": 32,
          "default": "neutral",
          "description": "per stage (5): 32 gains then 32 biases; neutral = gains 1, biases 0",
          "dtype": "float16",
          "layout": "NC11 MLMultiArray",
          "name": "modulation",
          "shapes": [[1, 320, 1, 1]],
          "stages": 5
        }
      ],
      "minimum_deployment_target": "iOS17",
      "model_sha256": "e8dbcb5bca6dd37c584bcab3e660124acf65ee45994e17ce772a769e0a100515",
      "outputs": [
        {
          "color": "RGB",
          "dtype": "uint8",
          "layout": "image",
          "name": "output",
          "pixel_buffer": "CVPixelBuffer, 8 bits per channel",
          "shapes": [[1, 3, 512, 512], [1, 3, 1024, 1024]],
          "value_range": [0, 255]
        }
      ],
      "precision": "fp16",
      "runtime": "coreml",
      "scale": 2,
      "schema_version": 1,
      "target": "coreml",
      "tile": {
        "overlap": 16,
        "size": 256
      },
      "toolkit_version": "0.1.0",
      "weights": "none"
    }
    """#

    static func manifest() throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(manifestJSON.utf8))
    }

    /// The fixture with its modulation input (inputs[1]) edited.
    static func manifest(editingModulation edit: (inout [String: Any]) -> Void) throws -> Manifest {
        var object = try JSONSerialization.jsonObject(with: Data(manifestJSON.utf8)) as! [String: Any]
        var inputs = object["inputs"] as! [[String: Any]]
        edit(&inputs[1])
        object["inputs"] = inputs
        return try JSONDecoder().decode(Manifest.self, from: JSONSerialization.data(withJSONObject: object))
    }
}
