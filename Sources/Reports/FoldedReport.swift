import LeakAnalysis
import Symbolization

/// Collapsed stacks (`outermost;...;innermost BYTES`), one line per leaked stack, for
/// flamegraph.pl and speedscope. Frames are function names, `module+0xoffset` without symbols.
public enum FoldedReport {
    public static func render(_ report: LeakReport) -> String {
        var output = ""
        for stack in report.stacks where stack.bytes > 0 {
            let names = stack.frames.reversed().map(frameName)
            output += (names.isEmpty ? "[no stack]" : names.joined(separator: ";")) + " \(stack.bytes)\n"
        }
        return output
    }

    /// A frame's name with the characters the format reserves (`;` separates frames, the
    /// last space separates the count) replaced.
    static func frameName(_ frame: SymbolizedFrame) -> String {
        let name = frame.function ?? frame.moduleAndOffset
        return String(name.map { $0 == ";" ? ":" : ($0 == "\n" || $0 == " " ? "_" : $0) })
    }
}
