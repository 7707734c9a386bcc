// The leakreport executable: everything lives in LeakReportCommands so that tests can run it.
#if canImport(Glibc)
import Glibc
#endif
import LeakReportCommands

exit(LeakReportCLI.run(Array(CommandLine.arguments.dropFirst())))
