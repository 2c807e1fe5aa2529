import Testing
@testable import KVM

@Suite(.timeLimit(.minutes(1))) struct DirtyBitmapTests {
    @Test func sizesRoundUpToWholeWords() {
        #expect(DirtyBitmap.wordCount(pages: 1) == 1)
        #expect(DirtyBitmap.wordCount(pages: 64) == 1)
        #expect(DirtyBitmap.wordCount(pages: 65) == 2)
        #expect(DirtyBitmap.byteCount(pages: 262_144) == 32768)
    }

    @Test func countsIgnoreBitsPastTheSlot() {
        var bitmap = DirtyBitmap(pages: 70)
        bitmap.setAll()
        #expect(bitmap.dirtyCount == 70)
        bitmap[3] = false
        #expect(bitmap.dirtyCount == 69)
        #expect(bitmap[69] && !bitmap[3])
    }

    @Test func clearRangesFollowKVMRules() {
        #expect(ClearRange(firstPage: 0, pageCount: 64).isValid(slotPages: 100))
        #expect(ClearRange(firstPage: 64, pageCount: 36).isValid(slotPages: 100))  // runs to the end
        #expect(!ClearRange(firstPage: 64, pageCount: 30).isValid(slotPages: 100))
        #expect(!ClearRange(firstPage: 32, pageCount: 64).isValid(slotPages: 200))
        #expect(!ClearRange(firstPage: 0, pageCount: 128).isValid(slotPages: 100))
    }

    @Test(arguments: [(1000, 100), (1000, 64), (64, 1), (100, 1000), (4097, 256)])
    func chunksCoverTheSlotExactlyOnce(slotPages: Int, chunk: Int) {
        let ranges = ClearRange.chunks(slotPages: slotPages, chunk: chunk)
        #expect(ranges.allSatisfy { $0.isValid(slotPages: slotPages) })
        #expect(ranges.reduce(0) { $0 + $1.pageCount } == slotPages)
        #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.firstPage + $0.pageCount == $1.firstPage })
    }
}
