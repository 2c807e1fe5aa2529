/// The words guests write: the host puts a stamp's `base` in MB_STAMP and
/// the guest stores base + page index in each page it writes. One layout
/// for every experiment, so any word read back says who wrote it and when:
///
///   bits 48-63  tag (nonzero): the writer (a vCPU, an experiment's part)
///   bits 32-47  sequence: the pass or iteration
///   bits 30-31  part: a sub-pass (e.g. the host's half of memslot rw)
///   bits  0-29  page index, added by the guest
public struct Stamp: Sendable, Equatable {
    public static let pageBits: UInt64 = 30

    public let tag: UInt16
    public let sequence: UInt16
    public let part: UInt8

    public init(tag: UInt16, sequence: Int, part: UInt8 = 0) {
        precondition(tag != 0 && part < 4, "a stamp needs a nonzero tag and a part below 4")
        self.tag = tag
        self.sequence = UInt16(truncatingIfNeeded: sequence)
        self.part = part
    }

    public var base: UInt64 { UInt64(tag) << 48 | UInt64(sequence) << 32 | UInt64(part) << Stamp.pageBits }

    public func word(page: Int) -> UInt64 { base + UInt64(page) }

    /// The stamp a word carries, or nil for a word no guest stamped (tag 0).
    public init?(word: UInt64) {
        guard word >> 48 != 0 else { return nil }
        tag = UInt16(word >> 48)
        sequence = UInt16(truncatingIfNeeded: word >> 32)
        part = UInt8((word >> Stamp.pageBits) & 3)
    }

    /// The page index a stamped word carries.
    public static func page(of word: UInt64) -> Int { Int(word & ((1 << pageBits) - 1)) }
}
