import Glibc

/// Small reads and writes of /proc and /sys files.
public enum HostFiles {
    public static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readAll(fd).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The bytes of an open file, stopping once more than `limit` have
    /// arrived (so callers can refuse oversized files); nil on a read error.
    public static func readAll(_ fd: Int32, limit: Int = .max) -> [UInt8]? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while bytes.count <= limit {
            let got = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if got < 0 { return nil }
            if got == 0 { break }
            bytes.append(contentsOf: chunk[0..<got])
        }
        return bytes
    }

    public static func trimmed(_ path: String) -> String? {
        read(path).map { $0.trimmingCharacters(in: " \n\t") }
    }

    public static func integer(_ path: String) -> Int? { trimmed(path).flatMap { Int($0) } }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) throws(HostError) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { throw HostError("cannot open \(path): \(String(cString: strerror(errno)))") }
        return info.st_mode & S_IFMT == S_IFDIR
    }

    /// The names in a directory (not . and ..).
    public static func list(_ path: String) throws(HostError) -> [String] {
        guard let directory = opendir(path) else { throw HostError("cannot list \(path): \(String(cString: strerror(errno)))") }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public static func readBytes(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readAll(fd)
    }

    @discardableResult
    public static func write(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count
    }
}

extension HostFiles {
    /// Writes `text` to `path` atomically: a temporary file in the same
    /// directory, fsync'd, then renamed over the target, so a reader (the
    /// node_exporter textfile collector, a plot viewer) never sees half a file.
    public static func writeAtomically(_ path: String, _ text: String) throws(HostError) {
        let temporary = path + ".tmp.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HostError("cannot write \(path): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let got = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if got <= 0 {
                let reason = String(cString: strerror(errno))
                close(fd)
                unlink(temporary)
                throw HostError("cannot write \(path): \(reason)")
            }
            written += got
        }
        fsync(fd)
        close(fd)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw HostError("cannot write \(path): \(reason)")
        }
    }

    /// Whether a file can be created at `path` (its directory exists and is writable).
    public static func canCreate(_ path: String) -> Bool {
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        return access(directory.isEmpty ? "/" : directory, W_OK) == 0
    }
}

extension String {
    public func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var slice = Substring(self)
        while let first = slice.first, chars.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, chars.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
