import AVFoundation
import CoreImage
import MetaSRKit
import SwiftUI

struct ContentView: View {
    @StateObject private var camera = CameraModel()
    @State private var split: CGFloat = 0.5

    var body: some View {
        ZStack(alignment: .bottom) {
            Color.black.ignoresSafeArea()
            if let original = camera.original, let upscaled = camera.upscaled {
                SplitImage(original: original, upscaled: upscaled, split: $split)
            }
            VStack(alignment: .leading, spacing: 4) {
                Text(camera.msPerFrame.map { String(format: "%.1f ms/frame", $0) } ?? camera.status)
                Text("route: \(camera.route)").foregroundStyle(.cyan)
                Text("◀ original (bilinear) | MetaSR ▶ — drag to move the split").font(.caption)
            }
            .font(.system(.body, design: .monospaced))
            .foregroundStyle(.white)
            .frame(maxWidth: .infinity, alignment: .leading)
            .padding()
            .background(.black.opacity(0.6))
        }
        .task { await camera.start() }
        .onDisappear { camera.stop() }
    }
}

/// Original (left, bilinearly resized) vs upscaled (right), split at a draggable line.
struct SplitImage: View {
    let original: CGImage
    let upscaled: CGImage
    @Binding var split: CGFloat

    var body: some View {
        GeometryReader { geo in
            ZStack(alignment: .leading) {
                Image(decorative: upscaled, scale: 1).resizable().scaledToFit()
                Image(decorative: original, scale: 1).resizable().interpolation(.medium).scaledToFit()
                    .mask(alignment: .leading) { Rectangle().frame(width: geo.size.width * split) }
                Rectangle().fill(.white).frame(width: 2).offset(x: geo.size.width * split - 1)
            }
            .frame(width: geo.size.width, height: geo.size.height)
            .contentShape(Rectangle())
            .gesture(DragGesture(minimumDistance: 0).onChanged { drag in
                split = min(max(drag.location.x / geo.size.width, 0), 1)
            })
        }
    }
}

/// Camera frames in, upscaled frames out. Frames are processed on `queue`; published state changes on main.
final class CameraModel: NSObject, ObservableObject, AVCaptureVideoDataOutputSampleBufferDelegate {
    @Published private(set) var original: CGImage?
    @Published private(set) var upscaled: CGImage?
    @Published private(set) var msPerFrame: Double?
    @Published private(set) var status = "Loading model…"
    /// What produced the frame on screen. For now the one model in use ("target · file · compute units");
    /// the content orchestrator will set it per frame.
    @Published var route = ""

    private let session = AVCaptureSession()
    private let queue = DispatchQueue(label: "dev.metasr.frames")
    private let context = CIContext()
    private var engine: CoreMLEngine? // only touched on `queue`

    func start() async {
        do {
            let (manifest, modelURL) = try ModelStore.locate(documents: URL.documentsDirectory)
            let engine = try await CoreMLEngine(modelURL: modelURL, manifest: manifest)
            let route = "\(manifest.target) · \(manifest.file) · \(engine.computeUnits.resultName)"
            queue.async { self.engine = engine }
            await MainActor.run {
                self.route = route
                self.status = "Waiting for the camera…"
            }
        } catch {
            await publish(status: error.localizedDescription)
            return
        }
        guard await AVCaptureDevice.requestAccess(for: .video) else {
            await publish(status: "Camera access denied: allow it in Settings")
            return
        }
        queue.async { self.configureAndRun() }
    }

    func stop() {
        queue.async { self.session.stopRunning() }
    }

    private func configureAndRun() {
        session.beginConfiguration()
        session.sessionPreset = .vga640x480 // small enough to upscale live
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .back),
              let input = try? AVCaptureDeviceInput(device: device), session.canAddInput(input) else {
            session.commitConfiguration()
            DispatchQueue.main.async { self.status = "No back camera" }
            return
        }
        session.addInput(input)
        let output = AVCaptureVideoDataOutput()
        output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA]
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(self, queue: queue)
        if session.canAddOutput(output) { session.addOutput(output) }
        if let connection = output.connection(with: .video), connection.isVideoRotationAngleSupported(90) {
            connection.videoRotationAngle = 90 // portrait
        }
        session.commitConfiguration()
        session.startRunning()
    }

    func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer,
                       from connection: AVCaptureConnection) {
        guard let engine, let frame = CMSampleBufferGetImageBuffer(sampleBuffer) else { return }
        do {
            let start = DispatchTime.now().uptimeNanoseconds
            let upscaled = try engine.upscale(frame)
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            let original = context.createCGImage(CIImage(cvPixelBuffer: frame), from: CGRect(
                x: 0, y: 0, width: CVPixelBufferGetWidth(frame), height: CVPixelBufferGetHeight(frame)))
            DispatchQueue.main.async {
                self.original = original
                self.upscaled = upscaled
                self.msPerFrame = ms
            }
        } catch {
            DispatchQueue.main.async { self.status = error.localizedDescription }
        }
    }

    @MainActor private func publish(status: String) {
        self.status = status
    }
}
