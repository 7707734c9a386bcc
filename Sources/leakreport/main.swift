// The leakreport executable: everything lives in LeakReportCommands so that tests can run it.
#if canImport(Glibc)
import Glibc
#endif
import LeakReportCommands

#if canImport(Glibc)
// The heap grows 4 MiB past each request instead of 128 KiB, and keeps that much at its top
// when blocks are freed (glibc's M_TOP_PAD): a report grows its tables by doubling, and with
// the default the heap was given back and taken again, a page fault per page each time (on
// recurse's next report as much CPU time in the kernel as in leakreport). Peak RSS moves by
// about a MiB. mallopt is looked up because Swift's Glibc module leaves out <malloc.h>.
if let symbol = dlsym(nil, "mallopt") {
    let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
    let topPad: Int32 = -2 // M_TOP_PAD
    _ = mallopt(topPad, 4 << 20)
}
#endif

exit(LeakReportCLI.run(Array(CommandLine.arguments.dropFirst())))
