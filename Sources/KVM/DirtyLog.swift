import CKVM
import Glibc

extension VirtualMachine {
    /// KVM_GET_DIRTY_LOG: fills `bitmap` with the slot's dirty pages. Without
    /// manual protect this also write-protects them again; with it, pages stay
    /// writable until KVM_CLEAR_DIRTY_LOG.
    public func getDirtyLog(slot: UInt32, into bitmap: inout DirtyBitmap) throws(KVMError) {
        let failed: Bool = bitmap.words.withUnsafeMutableBytes { raw in
            var log = kvm_dirty_log()
            log.slot = slot
            log.dirty_bitmap = raw.baseAddress
            return ckvm_ioctl_ptr(fd.raw, CKVM_GET_DIRTY_LOG, &log) != 0
        }
        if failed {
            throw KVMError.last("KVM_GET_DIRTY_LOG(slot \(slot))",
                                hint: Glibc.errno == ENOENT ? "dirty logging is not enabled on slot \(slot)" : nil)
        }
    }

    /// KVM_CLEAR_DIRTY_LOG for one range; bit i of `bitmap` (counted from the
    /// range's first page) re-protects page firstPage + i.
    public func clearDirtyLog(slot: UInt32, range: ClearRange, bitmap: UnsafeRawPointer) throws(KVMError) {
        var clear = kvm_clear_dirty_log()
        clear.slot = slot
        clear.first_page = UInt64(range.firstPage)
        clear.num_pages = UInt32(range.pageCount)
        clear.dirty_bitmap = UnsafeMutableRawPointer(mutating: bitmap)
        guard ckvm_ioctl_ptr(fd.raw, CKVM_CLEAR_DIRTY_LOG, &clear) == 0 else {
            throw KVMError.last("KVM_CLEAR_DIRTY_LOG(slot \(slot), first \(range.firstPage), count \(range.pageCount))",
                                hint: "first_page must be 64-aligned and num_pages a multiple of 64 unless it reaches the slot's end; manual protect must be enabled")
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
