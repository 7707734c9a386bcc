import FoundationEssentials
import LeakAnalysis
import Symbolization

// `leakreport --format html TRACE`: one self-contained page. The report's data goes into the
// page as JSON (the report document of docs/report-json.md, the leaked stacks as a tree, the
// timeline and the marks) and a small script in the page draws it: no file or library is
// fetched when the page is built or opened.

/// What the page draws. `report` is the JSON report document; the page shows any field it
/// knows, so a field added later appears once the page draws it.
public struct HtmlReportData: Encodable {
    public var report: LeakReport
    public var flame: FlameTree
    public var timeline: Timeline
    public var marks: [MarkSeen]

    public init(report: LeakReport, timeline: Timeline, marks: [MarkSeen]) {
        self.report = report
        flame = FlameTree(stacks: report.stacks)
        self.timeline = timeline
        self.marks = marks
    }
}

/// Leaked bytes by stack as a tree, outermost frame at the root: what the icicle graph draws.
/// Frames are merged by name and file:line along each path. Only the `nodeBudget` biggest
/// nodes are kept (a node is never smaller than a child, so they form a tree from the root;
/// the bytes of the others stay in their parents' totals): a trace with a hundred thousand
/// leaked stacks still makes a page of a few hundred KiB, and what is left out is too narrow
/// to see until zoomed far in.
public struct FlameTree: Encodable {
    /// Distinct frames, as `[name, file:line]` (file:line empty when unknown).
    public private(set) var frames: [[String]] = []
    /// The nodes, the root (all leaked stacks) first. A node is `[frame index (-1 for the
    /// root), bytes, blocks, parent index]`: flat, so the page needs no recursion to read it.
    public private(set) var nodes: [[Int64]] = []

    public static let nodeBudget = 20_000

    public init(stacks: [LeakStack]) {
        final class Node {
            var bytes: UInt64 = 0
            var blocks = 0
            var children: [Int: Node] = [:]
            var order: [Int] = []
        }
        var frameIndex: [[String]: Int] = [:]
        let root = Node()
        for stack in stacks where stack.bytes > 0 {
            root.bytes &+= stack.bytes
            root.blocks += stack.blocks
            var node = root
            for frame in stack.frames.reversed() {
                let key = [frame.function ?? frame.moduleAndOffset, Self.location(of: frame)]
                let index: Int
                if let known = frameIndex[key] {
                    index = known
                } else {
                    index = frames.count
                    frameIndex[key] = index
                    frames.append(key)
                }
                let child: Node
                if let known = node.children[index] {
                    child = known
                } else {
                    child = Node()
                    node.children[index] = child
                    node.order.append(index)
                }
                child.bytes &+= stack.bytes
                child.blocks += stack.blocks
                node = child
            }
        }
        // The budget-th biggest size: bigger nodes are all kept, equal ones while the budget lasts.
        var sizes: [UInt64] = []
        var walk = [root]
        while let node = walk.popLast() {
            sizes.append(node.bytes)
            walk += node.children.values
        }
        sizes.sort(by: >)
        let threshold = sizes.count > Self.nodeBudget ? sizes[Self.nodeBudget - 1] : 0
        var equalAllowed = Self.nodeBudget - sizes.prefix { $0 > threshold }.count
        var pending: [(node: Node, frame: Int, parent: Int)] = [(root, -1, -1)]
        while let (node, frame, parent) = pending.popLast() {
            if node.bytes == threshold && frame >= 0 {
                guard equalAllowed > 0 else { continue }
                equalAllowed -= 1
            }
            let position = nodes.count
            nodes.append([Int64(frame), Int64(clamping: node.bytes), Int64(node.blocks), Int64(parent)])
            let children = node.order.compactMap { index in node.children[index].map { (index, $0) } }
                .filter { $0.1.bytes > 0 && $0.1.bytes >= threshold }
                .sorted { $0.1.bytes > $1.1.bytes }
            for (index, child) in children.reversed() { pending.append((child, index, position)) }
        }
    }

    static func location(of frame: SymbolizedFrame) -> String {
        guard let file = frame.file else { return "" }
        return frame.line.map { "\(file):\($0)" } ?? file
    }
}

/// Renders the page of a report (`HtmlReportData`) or of a `growth`, `diff` or `timeline`
/// document (their JSON documents, told apart by `kind`).
public enum HtmlReport {
    public static func render<Document: Encodable>(_ data: Document) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // `<` only occurs inside JSON strings, where \u003c means the same: the data can then
        // never close the script element that holds it.
        let json = String(decoding: try encoder.encode(data), as: UTF8.self).replacing("<", with: "\\u003c")
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
            <title>leakreport</title>
            <style>
            \(HtmlPageStyle.css)
            </style>
            </head>
            <body>
            <main id="page"><noscript>This report is drawn by a script in the page; allow scripts to see it.</noscript></main>
            <script id="report-data" type="application/json">\(json)</script>
            <script>
            \(HtmlPageScript.js)
            </script>
            </body>
            </html>

            """
    }
}
