import ArgumentParser
import Report
import Scenarios

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show what this host's KVM can do: capabilities, MMU mode, stats.",
        discussion: "Example: kvmlab info --json | jq .result.maxVCPUs")

    @Flag(help: "Print one JSON document instead of tables.") var json = false

    func run() throws {
        let info = try InfoScenario.run()
        Exit.output(json ? try JSONDocument(command: "info", host: info.host, experiment: nil, detail: info).render() : InfoReport.text(info))
    }
}
