import VMM

/// `kvmlab migrate`: pre-copy live migration of a running migrator VM to
/// another kvmlab process (a child on this host, or `--listen` elsewhere).
public enum MigrateScenario: Scenario {
    public static let kind = ExperimentKind.migrate

    public static func validate(_ config: MigrateConfig) throws { try config.validate() }

    /// The source: builds and runs the VM, then migrates it to the kvmlab
    /// listening at `config.destination`. A failure after the guest started
    /// is in the result (with what was measured), not thrown.
    public static func run(_ config: MigrateConfig) throws -> MigrateResult {
        try validate(config)
        guard let destination = config.destination else { throw ConfigError("no destination: a migration needs the address a destination listens on") }
        return try MigrationSource(config).run { try StreamSocket.connect(to: destination) }
    }

    /// The destination: serves one migration arriving on `listener`.
    /// Throws, in one line, on a stream it refuses.
    public static func receive(listener: Int32, backing: Backing?, prealloc: Bool = false, pin: [Int]) throws -> DestinationReport {
        try PinPlan.checkCPUs(pin)
        return try MigrationDestination.serve(listener: listener, backing: backing, prealloc: prealloc, pin: pin)
    }
}
