import Foundation
import Testing
@testable import Report
import VMM

@Suite(.timeLimit(.minutes(1))) struct ReportTests {
    @Test func tablesAlignColumns() {
        var table = Table(headers: ["phase", "seconds"])
        table.add(["populate", "1.5"])
        table.add(["get", "10.25"])
        let lines = table.render().split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines[2] == "populate      1.5")
        #expect(lines[3] == "get         10.25")
    }

    @Test func jsonDocumentsCarrySchemaAndHost() throws {
        struct Payload: Encodable { let seconds: Double }
        let text = try JSONDocument(command: "test", experiment: nil, detail: Payload(seconds: 0.5)).render()
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        #expect(object["schema"] as? String == "kvmlab/2")
        #expect(object["command"] as? String == "test")
        #expect((object["host"] as? [String: Any])?["kernel"] is String)
        #expect((object["detail"] as? [String: Any])?["seconds"] as? Double == 0.5)
    }

    @Test func byteFormatting() {
        #expect(Sizes.format(64 << 20) == "64 MiB")
        #expect(Sizes.format(1536) == "1.5 KiB")
        #expect(Format.signed(3) == "+3")
        #expect(Format.fixed(1.005, 2) == "1.01" || Format.fixed(1.005, 2) == "1.00")
        #expect(Format.fixed(-0.25, 1) == "-0.3")
        #expect(Format.fixed(2.5, 0) == "3")
        #expect(Format.fixed(0.000123, 6) == "0.000123")
        #expect(Format.fixed(.nan) == "nan" && Format.fixed(-.infinity) == "-inf")
        #expect(Format.fixed(1e300, 2) == "1e+300")
    }

    /// Label values escape the quote that delimits them; HELP text does not
    /// (the Prometheus text format escapes only backslash and newline there).
    @Test func metricsTextEscapes() {
        let text = "say \"hi\"\\now\nthen"
        #expect(OpenMetrics.escape(text, quotes: true) == #"say \"hi\"\\now\nthen"#)
        #expect(OpenMetrics.escape(text, quotes: false) == #"say "hi"\\now\nthen"#)
    }
}

/// Text in a picture is escaped: a variant name or setting with '<' or '&'
/// must not break the SVG.
@Suite(.timeLimit(.minutes(1))) struct SVGEscapeTests {
    @Test func markupCharactersAreEscaped() {
        #expect(SVG.escape("a<b>&\"c\"") == "a&lt;b&gt;&amp;&quot;c&quot;")
    }
}
