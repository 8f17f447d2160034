#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU time (user plus system) that processes have used so far, read from Linux's `/proc`: lets a benchmark say
/// which process its CPU went to.
///
/// Every reading is `nil` where there is no `/proc` (macOS) or the process is gone.
public enum ProcessCPUTime {
    /// The CPU time `pid` has used so far.
    public static func of(_ pid: Int32) -> Duration? {
        stat(of: pid).map { duration(ticks: $0.ownTicks) }
    }

    /// The CPU time of `pid`, of its running children and of the children it has already waited for — a
    /// postmaster and all its backends, for example.
    public static func ofFamily(_ pid: Int32) -> Duration? {
        guard let parent = stat(of: pid) else { return nil }
        var ticks = parent.ownTicks + parent.waitedChildrenTicks
        for child in children(of: pid) { ticks += stat(of: child)?.ownTicks ?? 0 }
        return duration(ticks: ticks)
    }

    /// The fields of `/proc/PID/stat` this type uses.
    struct Stat: Equatable {
        var parent: Int32
        var ownTicks: Int
        var waitedChildrenTicks: Int
    }

    /// Parses one `/proc/PID/stat` line. The command name (field 2) may hold spaces and parentheses, so fields are
    /// counted from its last `)`.
    static func parse(_ line: String) -> Stat? {
        guard let close = line.lastIndex(of: ")") else { return nil }
        // Fields 3 (state) on: ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
        let fields = line[line.index(after: close)...].split(separator: " ")
        guard fields.count > 14, let parent = Int32(fields[1]), let utime = Int(fields[11]), let stime = Int(fields[12]),
            let cutime = Int(fields[13]), let cstime = Int(fields[14])
        else { return nil }
        return Stat(parent: parent, ownTicks: utime + stime, waitedChildrenTicks: cutime + cstime)
    }

    private static func stat(of pid: Int32) -> Stat? {
        readSmallFile("/proc/\(pid)/stat").flatMap(parse)
    }

    private static func children(of pid: Int32) -> [Int32] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var children: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let candidate = Int32(name), let stat = stat(of: candidate), stat.parent == pid else { continue }
            children.append(candidate)
        }
        return children
    }

    private static func duration(ticks: Int) -> Duration {
        let perSecond = max(1, sysconf(Int32(_SC_CLK_TCK)))
        return .milliseconds(ticks * 1000 / perSecond)
    }

    /// Reads a file whose size `stat` does not tell (as in `/proc`) to its end.
    private static func readSmallFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}
