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
          "default": -1.0,
          "description": "restoration strength: a value in [0, 1] replaces the degradation degree the model estimates for every cell (0 = treat the frame as clean, 1 = restore as hard as possible); the default -1 uses the estimated degree",
          "dtype": "float16",
          "layout": "NC11 MLMultiArray",
          "name": "strength",
          "optional": true,
          "shapes": [[1, 1, 1, 1]],
          "value_range": [0.0, 1.0]
        }
      ],
      "macs_per_output_pixel": {"metadata_and_orchestrator": 804.5, "student": 12609.0, "total": 13413.5},
      "minimum_deployment_target": "iOS17",
      "model": {
        "graph": "metasr",
        "orchestrator": {
          "content_channels": 16,
          "embed_channels": 32,
          "hidden_channels": 48,
          "source_dims": [["edges", 2], ["degradation", 3], ["luminance", 3]],
          "stage_channels": [32, 32, 32, 32, 32],
          "threshold": 0.25
        },
        "sources": ["edges", "degradation", "luminance"],
        "student": {"channels": 32, "in_channels": 3, "num_blocks": 5, "scale": 2}
      },
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
      "schema_version": 3,
      "target": "coreml",
      "tile": {
        "overlap": 16,
        "size": 256
      },
      "toolkit_version": "0.1.0",
      "weights": "none"
    }
    """#

    /// A routed Core ML manifest as `metasr-export --target coreml` writes it for a two-expert routed checkpoint: one
    /// multifunction package with a function per router and expert (tests/test_demo_apps.py checks it too).
    static let routedManifestJSON = #"""
    {
      "activations": "fp16",
      "compute_units": "CPU_AND_NE",
      "enumerated_shapes": [
        [
          1,
          3,
          128,
          128
        ]
      ],
      "file": "metasr_x2_routed.mlpackage",
      "format": "mlpackage (ML program)",
      "inputs": [
        {
          "color": "RGB",
          "dtype": "uint8",
          "layout": "image",
          "name": "image",
          "pixel_buffer": "CVPixelBuffer, 8 bits per channel",
          "scale": "1/255, baked into the model",
          "shapes": [
            [
              1,
              3,
              128,
              128
            ]
          ],
          "value_range": [
            0,
            255
          ]
        },
        {
          "default": -1.0,
          "description": "restoration strength: a value in [0, 1] replaces the degradation degree the model estimates for every cell (0 = treat the frame as clean, 1 = restore as hard as possible); the default -1 uses the estimated degree",
          "dtype": "float16",
          "layout": "NC11 MLMultiArray",
          "name": "strength",
          "optional": true,
          "shapes": [
            [
              1,
              1,
              1,
              1
            ]
          ],
          "value_range": [
            0.0,
            1.0
          ]
        }
      ],
      "macs_per_output_pixel": {
        "metadata_and_orchestrator": 198.2,
        "student": 567.0,
        "total": 765.2
      },
      "minimum_deployment_target": "iOS18",
      "model": {
        "experts": 2,
        "graph": "routed",
        "orchestrator": {
          "content_channels": 16,
          "embed_channels": 32,
          "hidden_channels": 48,
          "source_dims": [
            [
              "degradation",
              3
            ]
          ],
          "stage_channels": [
            8,
            8
          ],
          "threshold": 0.25
        },
        "sources": [
          "degradation"
        ],
        "student": {
          "channels": 8,
          "in_channels": 3,
          "num_blocks": 2,
          "scale": 2
        }
      },
      "model_sha256": "a67f87f0766d04ef4f6c148da838fb735dcb35e0e00bdd2e0ad69a3cfd5356be",
      "outputs": [
        {
          "color": "RGB",
          "dtype": "uint8",
          "layout": "image",
          "name": "output",
          "pixel_buffer": "CVPixelBuffer, 8 bits per channel",
          "shapes": [
            [
              1,
              3,
              256,
              256
            ]
          ],
          "value_range": [
            0,
            255
          ]
        }
      ],
      "precision": "fp16",
      "routing": {
        "blending": "hard",
        "dispatch": "feed the router the thumbnail image[..., ::2, ::2] of the image tile (the pixels whose row and column are multiples of 2) and the strength; the argmin over axis 1 of its output names the expert for each 64x64 block of the input; run each chosen expert on the whole image tile and keep its output over its blocks (128x128 output pixels each). A function is its own file, or a method (ExecuTorch) or function (Core ML) of that name in the shared file",
        "experts": [
          {
            "file": "metasr_x2_routed.mlpackage",
            "function": "expert_0",
            "macs_per_output_pixel": 12609.0
          },
          {
            "file": "metasr_x2_routed.mlpackage",
            "function": "expert_1",
            "macs_per_output_pixel": 12609.0
          }
        ],
        "router": {
          "file": "metasr_x2_routed.mlpackage",
          "function": "router",
          "inputs": [
            {
              "color": "RGB",
              "dtype": "uint8",
              "layout": "image",
              "name": "image",
              "pixel_buffer": "CVPixelBuffer, 8 bits per channel",
              "scale": "1/255, baked into the model",
              "shapes": [
                [
                  1,
                  3,
                  64,
                  64
                ]
              ],
              "value_range": [
                0,
                255
              ]
            },
            {
              "default": -1.0,
              "description": "restoration strength: a value in [0, 1] replaces the degradation degree the model estimates for every cell (0 = treat the frame as clean, 1 = restore as hard as possible); the default -1 uses the estimated degree",
              "dtype": "float16",
              "layout": "NC11 MLMultiArray",
              "name": "strength",
              "optional": true,
              "shapes": [
                [
                  1,
                  1,
                  1,
                  1
                ]
              ],
              "value_range": [
                0.0,
                1.0
              ]
            }
          ],
          "output": {
            "description": "one score per expert and routing tile; the app runs the expert with the lowest",
            "layout": "NKHW",
            "name": "output",
            "shapes": [
              [
                1,
                2,
                2,
                2
              ]
            ]
          }
        },
        "thumbnail": 2,
        "tile": 64
      },
      "runtime": "coreml",
      "scale": 2,
      "schema_version": 3,
      "target": "coreml",
      "tile": {
        "overlap": 16,
        "size": 256
      },
      "toolkit_version": "0.1.0",
      "weights": "none"
    }
    """#

    static func routedManifest() throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(routedManifestJSON.utf8))
    }

    static func manifest() throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(manifestJSON.utf8))
    }

    /// The fixture with its strength input (inputs[1]) edited.
    static func manifest(editingStrength edit: (inout [String: Any]) -> Void) throws -> Manifest {
        var object = try JSONSerialization.jsonObject(with: Data(manifestJSON.utf8)) as! [String: Any]
        var inputs = object["inputs"] as! [[String: Any]]
        edit(&inputs[1])
        object["inputs"] = inputs
        return try JSONDecoder().decode(Manifest.self, from: JSONSerialization.data(withJSONObject: object))
    }
}
