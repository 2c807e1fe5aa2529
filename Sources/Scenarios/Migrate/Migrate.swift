import VMM

/// `kvmlab migrate`: pre-copy live migration of a running migrator VM to
/// another kvmlab process (a child on this host, or `--listen` elsewhere).
public enum MigrateScenario {
    /// The source: builds and runs the VM, then migrates it over the
    /// stream `connect` opens. A failure after the guest started is in the
    /// result (with what was measured), not thrown.
    public static func migrate(_ config: MigrateConfig, connect: () throws -> StreamSocket) throws -> MigrateResult {
        try MigrationSource(config).run(connect: connect)
    }

    /// The destination: serves one migration arriving on `listener`.
    /// Throws, in one line, on a stream it refuses.
    public static func receive(listener: Int32, backing: Backing?, prealloc: Bool = false, pin: [Int]) throws -> DestinationReport {
        try PinPlan.checkCPUs(pin)
        return try MigrationDestination.serve(listener: listener, backing: backing, prealloc: prealloc, pin: pin)
    }
}
