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

    @discardableResult
    public static func write(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count
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
