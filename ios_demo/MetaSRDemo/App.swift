import CoreML
import MetaSRKit
import SwiftUI

@main
struct MetaSRDemoApp: App {
    /// `-benchmark runs=50 input=256x256` on the launch command line switches to benchmark mode.
    private let benchmark = Result { try BenchmarkOptions.parse(ProcessInfo.processInfo.arguments) }

    var body: some Scene {
        WindowGroup {
            switch benchmark {
            case .success(.none): ContentView()
            case .success(.some(let options)): BenchmarkView(options: options, launchError: nil)
            case .failure(let error): BenchmarkView(options: nil, launchError: error)
            }
        }
    }
}

/// Runs the benchmark once, writes Documents/benchmark_results.json (or benchmark_error.txt) and shows the outcome.
struct BenchmarkView: View {
    let options: BenchmarkOptions?
    let launchError: Error?
    @State private var status = "MetaSR benchmark running…"

    var body: some View {
        Text(status)
            .font(.system(.body, design: .monospaced))
            .padding()
            .task {
                let options = options
                let launchError = launchError.map { $0.localizedDescription }
                status = await Task.detached(priority: .userInitiated) {
                    await Self.run(options: options, launchError: launchError)
                }.value
            }
    }

    /// nonisolated: the timing loop runs on the detached task, not the main actor.
    private nonisolated static func run(options: BenchmarkOptions?, launchError: String?) async -> String {
        let documents = URL.documentsDirectory
        let resultsURL = documents.appendingPathComponent(Benchmark.resultsFileName)
        let errorURL = documents.appendingPathComponent(Benchmark.errorFileName)
        try? FileManager.default.removeItem(at: resultsURL)
        try? FileManager.default.removeItem(at: errorURL)
        do {
            guard let options else { throw MetaSRError(launchError ?? "bad -benchmark arguments") }
            let (manifest, modelURL) = try ModelStore.locate(documents: documents)
            let units = options.computeUnits.flatMap { MLComputeUnits(resultName: $0) }
            let engine = try await CoreMLEngine(modelURL: modelURL, manifest: manifest, computeUnits: units)
            let results = try Benchmark.run(engine, options: options)
            let url = try Benchmark.write(results, to: documents)
            print("METASR_BENCHMARK DONE \(url.path)")
            let summary = "median \(results.medianMs) ms over \(results.runs) runs"
            return "done: \(summary)\n→ Documents/\(url.lastPathComponent)"
        } catch {
            let message = error.localizedDescription
            try? Data("\(message)\n".utf8).write(to: errorURL, options: .atomic)
            print("METASR_BENCHMARK FAILED \(message)")
            return "failed: \(message)"
        }
    }
}
