// libFuzzer entry point over the trace reader. Scripts/fuzz/build.sh compiles it together with
// Sources/TraceFormat (as one module) with `swiftc -sanitize=fuzzer,address`; Scripts/hazards.sh
// runs it over the committed corpus. It checks what FuzzKit.execute checks in the XCTest harness:
// a refusal is one line naming the file; a read ends with an end state; a cut lies within the
// input; every stack a record names was defined before it. A broken promise traps, so libFuzzer
// keeps the input as a crash.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTraceReader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let reader: TraceReader
    do {
        reader = try TraceReader(bytes: bytes, name: "fuzz.lt")
    } catch let error as TraceError {
        precondition(!error.description.contains("\n"), "a refusal spans lines")
        precondition(error.description.hasPrefix("fuzz.lt: "), "a refusal does not name the file")
        return 0
    } catch {
        preconditionFailure("open threw \(error), not a TraceError")
    }
    _ = reader.header.dumpLines
    reader.forEachRecord { record, _ in
        _ = record.dumpLine
        switch record {
        case let .alloc(_, _, _, _, stack), let .realloc(_, _, _, _, _, _, stack):
            precondition(stack == 0 || reader.stacks.isDefined(stack), "a record names an undefined stack")
        default:
            break
        }
    }
    switch reader.endState {
    case nil:
        preconditionFailure("reading ended without an end state")
    case let .cut(offset, reason)?:
        precondition(offset <= UInt64(size), "cut past the end of the input")
        precondition(!reason.isEmpty && !reason.contains("\n"), "a cut's reason is not one line")
    case .complete?:
        break
    }
    return 0
}
