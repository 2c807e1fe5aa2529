import CKVM
import Glibc

extension VirtualMachine {
    /// KVM_GET_DIRTY_LOG: fills `bitmap` with the slot's dirty pages. Without
    /// manual protect this also write-protects them again; with it, pages stay
    /// writable until KVM_CLEAR_DIRTY_LOG.
    public func getDirtyLog(slot: UInt32, into bitmap: inout DirtyBitmap) throws(KVMError) {
        var failure: KVMError?
        bitmap.words.withUnsafeMutableBytes { raw in
            var log = kvm_dirty_log()
            log.slot = slot
            log.dirty_bitmap = raw.baseAddress
            do throws(KVMError) {
                _ = try fd.ioctl(CKVM_GET_DIRTY_LOG, &log, "KVM_GET_DIRTY_LOG(slot \(slot))") { $0 == ENOENT ? "dirty logging is not enabled on slot \(slot)" : nil }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }

    /// KVM_CLEAR_DIRTY_LOG for one range; bit i of `bitmap` (counted from the
    /// range's first page) re-protects page firstPage + i. The caller
    /// guarantees `bitmap` holds at least `range.pageCount` bits.
    func clearDirtyLog(slot: UInt32, range: ClearRange, bitmap: UnsafeRawPointer) throws(KVMError) {
        var clear = kvm_clear_dirty_log()
        clear.slot = slot
        clear.first_page = UInt64(range.firstPage)
        clear.num_pages = UInt32(range.pageCount)
        clear.dirty_bitmap = UnsafeMutableRawPointer(mutating: bitmap)
        _ = try fd.ioctl(CKVM_CLEAR_DIRTY_LOG, &clear, "KVM_CLEAR_DIRTY_LOG(slot \(slot), first \(range.firstPage), count \(range.pageCount))") { _ in
            "first_page must be 64-aligned and num_pages a multiple of 64 unless it reaches the slot's end; manual protect must be enabled"
        }
    }

    /// Clears the pages set in `bitmap`, in the given ranges (each 64-aligned,
    /// so each range's bits start on a word boundary of the slot bitmap).
    public func clearDirtyLog(slot: UInt32, bitmap: DirtyBitmap, ranges: [ClearRange]) throws(KVMError) {
        var failure: KVMError?
        bitmap.words.withUnsafeBytes { raw in
            for range in ranges {
                do throws(KVMError) {
                    try clearDirtyLog(slot: slot, range: range, bitmap: raw.baseAddress! + range.firstPage / 8)
                } catch {
                    failure = error
                    return
                }
            }
        }
        if let failure { throw failure }
    }
}
