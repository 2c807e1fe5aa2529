/// A memslot's dirty bitmap as KVM_GET_DIRTY_LOG fills it: one bit per 4 KiB
/// page, stored in 64-bit words (KVM rounds the size up to whole words).
public struct DirtyBitmap: Sendable, Equatable {
    public static let pageSize = 4096
    /// KVM_CLEAR_DIRTY_LOG works in groups of this many pages.
    public static let clearAlignment = 64

    public let pages: Int
    public var words: [UInt64]

    public init(pages: Int) {
        self.pages = pages
        words = [UInt64](repeating: 0, count: DirtyBitmap.wordCount(pages: pages))
    }

    public static func wordCount(pages: Int) -> Int { (pages + 63) / 64 }

    public static func byteCount(pages: Int) -> Int { wordCount(pages: pages) * 8 }

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

    public mutating func clearAll() {
        for index in words.indices { words[index] = 0 }
    }

    public mutating func setAll() {
        for index in words.indices { words[index] = ~0 }
    }
}

/// A KVM_CLEAR_DIRTY_LOG request: pages [firstPage, firstPage + pageCount) of a slot.
public struct ClearRange: Sendable, Equatable {
    public let firstPage: Int
    public let pageCount: Int

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
