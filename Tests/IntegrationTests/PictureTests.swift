import Foundation
import FoundationXML
import TestSupport
import Testing

/// Every command's --svg: well-formed XML, small, and rendered by a real
/// SVG renderer (rsvg-convert) to a PNG.
enum Renderer {
    static let rsvg = FleetTools.which("rsvg-convert")
}

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct PictureTests {
    static let limit = 512 << 10

    func draw(_ arguments: [String]) throws -> (svg: String, png: Int?) {
        let directory = try FleetTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try CLI.run(arguments + ["--svg", directory + "/p.svg"])
        #expect(result.status == 0, "\(arguments): \(result.stderr)")
        let svg = try String(contentsOfFile: directory + "/p.svg", encoding: .utf8)
        guard let rsvg = Renderer.rsvg else { return (svg, nil) }
        let render = try Tool.run(rsvg, ["-w", "1400", "-o", directory + "/p.png", directory + "/p.svg"])
        #expect(render.status == 0, "rsvg-convert: \(render.stderr)")
        let size = (try? FileManager.default.attributesOfItem(atPath: directory + "/p.png")[.size] as? Int) ?? 0
        return (svg, size)
    }

    @Test(arguments: [
        ["run", "-v", "2", "--guest", "memstress", "-m", "8m", "-i", "2"],
        ["dirty-log", "-v", "2", "-b", "16m", "-i", "2", "-s", "anonymous_thp"],
        ["jitter", "-v", "2", "--duration", "0.5", "--warmup", "0.1", "--host-probe", "1"],
        ["exit-latency", "-n", "5000"],
        ["memslot", "-s", "16", "--memory", "4m", "-l", "0.1", "-r", "1"],
        ["populate", "-v", "1", "-b", "8m"],
        ["root-reload", "--dirtiers", "1", "--working-set", "1m", "--duration", "0.2"],
        ["teardown", "-v", "1", "--memory", "8m", "--baseline", "0.02"],
        ["teardown", "-v", "1", "--memory", "8m", "--baseline", "0.1", "--victim", "tcp", "--cpu", "1", "--control-cpu", "0"],
        ["jitter", "-v", "1", "-c", "1", "--duration", "0.3", "--warmup", "0.1", "--victim", "tcp"],
        ["compare", "exit-latency", "-n", "2000", "--rounds", "2", "--a", "", "--b", "--cpl 0"],
        ["migrate", "-v", "1", "--idle-vcpus", "1", "-b", "8m", "--baseline", "0.1", "--after", "0.1", "--bandwidth", "40m", "--dirty-rate", "20000", "--auto-converge"],
    ])
    func everyCommandDrawsAReadablePicture(arguments: [String]) throws {
        let (svg, png) = try draw(arguments)
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        #expect(svg.contains("version=\"1.1\"") && !svg.contains("<script"))
        #expect(svg.utf8.count <= PictureTests.limit, "\(svg.utf8.count) bytes")
        #expect(svg.contains("kvmlab \(arguments[0])"), "no title naming the command")
        if let png { #expect(png > 10_000, "the PNG is \(png) bytes") }
    }

    /// Binned per slice, the timeline stays small whatever the vCPU count.
    @Test func jittersPictureStaysSmallWithManyVCPUs() throws {
        let (svg, _) = try draw(["jitter", "-v", "64", "--duration", "1", "--warmup", "0.2", "--working-set", "64k"])
        #expect(svg.utf8.count <= PictureTests.limit, "\(svg.utf8.count) bytes")
        #expect(svg.contains("vCPUs 60-63"))
    }
}
