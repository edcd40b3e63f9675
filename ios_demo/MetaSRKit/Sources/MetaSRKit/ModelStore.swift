import Foundation

/// Finds the Core ML artifact and its manifest.json on the device.
public enum ModelStore {
    /// First a Core ML manifest in Documents or one folder below it (e.g. `Documents/coreml/`, copied with Finder or
    /// `devicectl`) with its `.mlpackage` beside it; else the manifest.json and compiled model bundled with the app.
    public static func locate(documents: URL, bundle: Bundle = .main) throws -> (manifest: Manifest, modelURL: URL) {
        let fm = FileManager.default
        let children = (try? fm.contentsOfDirectory(at: documents, includingPropertiesForKeys: [.isDirectoryKey])) ?? []
        let subfolders = children.filter { url in
            (try? url.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true && url.pathExtension.isEmpty
        }
        let folders = [documents] + subfolders
        for folder in folders {
            let url = folder.appendingPathComponent(Manifest.fileName)
            guard fm.fileExists(atPath: url.path), let manifest = try? Manifest.load(from: url),
                  manifest.target == "coreml" else { continue }
            let model = folder.appendingPathComponent(manifest.file)
            if fm.fileExists(atPath: model.path) { return (manifest, model) }
        }
        guard let url = bundle.url(forResource: "manifest", withExtension: "json") else {
            throw MetaSRError("no manifest.json in Documents or the app bundle; add artifacts/coreml (see README)")
        }
        let manifest = try Manifest.load(from: url)
        guard let model = bundle.url(forResource: manifest.compiledModelName, withExtension: nil) else {
            throw MetaSRError("\(manifest.compiledModelName) is not in the app bundle; add \(manifest.file) to the app")
        }
        return (manifest, model)
    }
}
