/// A memslot's dirty bitmap as KVM_GET_DIRTY_LOG fills it: one bit per 4 KiB
/// page, stored in 64-bit words (KVM rounds the size up to whole words).
public struct DirtyBitmap: Sendable, Equatable {
    /// One bit stands for one page of this size, whatever backs the slot.
    public static let pageSize = 4096
    /// KVM_CLEAR_DIRTY_LOG works in groups of this many pages.
    public static let clearAlignment = 64

    /// Pages in the slot; bits past it (in the last word) mean nothing.
    public let pages: Int
    /// The bitmap as KVM reads and writes it: bit i of word w is page 64·w + i.
    public var words: [UInt64]

    /// An all-clear bitmap for a slot of `pages` pages.
    public init(pages: Int) {
        self.pages = pages
        words = [UInt64](repeating: 0, count: DirtyBitmap.wordCount(pages: pages))
    }

    /// Words a slot of `pages` pages needs: KVM rounds up to whole 64-bit words.
    public static func wordCount(pages: Int) -> Int { (pages + 63) / 64 }

    /// Bytes of the buffer KVM_GET_DIRTY_LOG fills for `pages` pages.
    public static func byteCount(pages: Int) -> Int { wordCount(pages: pages) * 8 }

    /// Whether `page` (0-based within the slot) is dirty.
    public subscript(page: Int) -> Bool {
        get { words[page >> 6] & (1 << UInt64(page & 63)) != 0 }
        set {
            if newValue { words[page >> 6] |= 1 << UInt64(page & 63) } else { words[page >> 6] &= ~(1 << UInt64(page & 63)) }
        }
    }

    /// Dirty pages: bits set within `pages` (tail bits past the slot are ignored).
    public var dirtyCount: Int {
        var total = 0
        for (index, word) in words.enumerated() {
            var value = word
            let last = index == words.count - 1
            if last && pages % 64 != 0 { value &= (1 << UInt64(pages % 64)) - 1 }
            total += value.nonzeroBitCount
        }
        return total
    }

    /// Every bit clear (nothing dirty).
    public mutating func clearAll() {
        for index in words.indices { words[index] = 0 }
    }

    /// Every bit set, tail included (KVM_CLEAR_DIRTY_LOG of a whole slot).
    public mutating func setAll() {
        for index in words.indices { words[index] = ~0 }
    }
}

/// A KVM_CLEAR_DIRTY_LOG request: pages [firstPage, firstPage + pageCount) of a slot.
public struct ClearRange: Sendable, Equatable {
    public let firstPage: Int
    public let pageCount: Int

    /// A range; `isValid(slotPages:)` says whether KVM would take it.
    public init(firstPage: Int, pageCount: Int) {
        self.firstPage = firstPage
        self.pageCount = pageCount
    }

    /// KVM's rules: firstPage is a multiple of 64, and pageCount is too unless
    /// the range runs exactly to the end of the slot.
    public func isValid(slotPages: Int) -> Bool {
        firstPage >= 0 && pageCount > 0
            && firstPage % DirtyBitmap.clearAlignment == 0
            && firstPage + pageCount <= slotPages
            && (pageCount % DirtyBitmap.clearAlignment == 0 || firstPage + pageCount == slotPages)
    }

    /// Splits a slot into clear requests of about `chunk` pages, rounding the
    /// chunk up to a multiple of 64 so every request obeys KVM's rules.
    public static func chunks(slotPages: Int, chunk: Int) -> [ClearRange] {
        precondition(chunk > 0 && slotPages > 0)
        let step = (chunk + DirtyBitmap.clearAlignment - 1) / DirtyBitmap.clearAlignment * DirtyBitmap.clearAlignment
        return stride(from: 0, to: slotPages, by: step).map {
            ClearRange(firstPage: $0, pageCount: min(step, slotPages - $0))
        }
    }
}
