import KVM
import VMM

/// A harvest compared with what the guests really wrote: a page was written
/// in a pass exactly when its word carries that pass's sequence number.
public struct DirtyCheck: Sendable, Equatable {
    public var stamped = 0, dirty = 0, expected = 0, missed = 0, spurious = 0
    /// The first few pages that disagreed, as (slot, page, "missed"/"spurious").
    public var examples: [String] = []

    public static let maxExamples = 5

    public init() {}

    /// Adds one slot: `word(page)` reads the page's first word; with
    /// `expectAll` (an INITIALLY_SET first harvest) every page must be dirty.
    public mutating func add(slot: UInt32, bitmap: DirtyBitmap, iteration: Int, expectAll: Bool, word: (Int) -> UInt64) {
        let wanted = UInt16(truncatingIfNeeded: iteration)
        for page in 0..<bitmap.pages {
            let written = Stamp(word: word(page))?.sequence == wanted
            let isDirty = bitmap[page]
            let isExpected = written || expectAll
            if written { stamped += 1 }
            if isDirty { dirty += 1 }
            if isExpected { expected += 1 }
            if isExpected && !isDirty { missed += 1; note("slot \(slot) page \(page) written but not dirty") }
            if isDirty && !isExpected { spurious += 1; note("slot \(slot) page \(page) dirty but not written") }
        }
    }

    private mutating func note(_ example: String) {
        if examples.count < DirtyCheck.maxExamples { examples.append(example) }
    }

    public var correct: Bool { missed == 0 && spurious == 0 }
}
