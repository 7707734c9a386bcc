// One ELF file opened with libdwfl, answering "what source is at this file address?".
//
// Each file gets its own offline Dwfl session with the file reported at base 0, so lookups use
// module offsets (address - load bias). That makes one session serve every load of the same
// file (fork children, repeated runs at other ASLR biases), and modules that overlap in
// different snapshots (dlclose then dlopen at the same address) can never collide.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLibDW

/// One frame of source as the debug info describes it, before it is tied to a captured address.
struct SourceFrame: Equatable {
    var function: String?
    var file: String?
    var line: Int?
    var column: Int?
    var isInlined: Bool
}

final class ModuleDebugInfo {
    /// The build-id note of the file on disk; empty if it has none.
    let buildID: [UInt8]
    private let dwfl: OpaquePointer
    private let module: OpaquePointer
    /// Kept alive here because libdwfl holds a raw pointer to it as the module's userdata.
    private let locator: DebugFileLocator
    /// Demangled names and file names by the address of libdw's own string (in .debug_str,
    /// .strtab or the line table), which is stable for the session: each string is decoded and
    /// demangled once, and every frame that uses it shares one Swift string.
    private var namesByPointer: [UnsafeRawPointer: String] = [:]
    private var filesByPointer: [UnsafeRawPointer: String] = [:]

    // MARK: Opening

    /// Opens `path` and reports it to a new offline session. Debug files are looked for lazily,
    /// on the first lookup, under `debugDirectories`; those with compressed sections are
    /// decompressed through `images`.
    static func open(path: String, debugDirectories: [String], images: DebugImageStore) -> Result<ModuleDebugInfo, FileProblem> {
        var fd: Int32
        switch openRegularFile(path) {
        case .success(let opened): fd = opened
        case .failure(let problem): return .failure(problem)
        }
        let identity = FileIdentity(fd: fd)
        guard let buildID = gnuBuildID(fd: fd) else {
            close(fd)
            return .failure(FileProblem(reason: "not an ELF file"))
        }
        // A file built with compressed debug sections (-gz) carries its DWARF like a debug file.
        fd = images.descriptor(for: fd)
        guard let dwfl = dwfl_begin(offlineCallbacks) else {
            close(fd)
            return .failure(FileProblem(reason: libdwflErrorMessage()))
        }
        dwfl_report_begin(dwfl)
        // add_p_vaddr with base 0: the module's addresses are the file's own p_vaddr numbering.
        guard let module = dwfl_report_elf(dwfl, lastPathComponent(path), path, fd, 0, true) else {
            let reason = libdwflErrorMessage()
            // On failure libdwfl leaves the descriptor to us.
            if fcntl(fd, F_GETFD) != -1 { close(fd) }
            dwfl_end(dwfl)
            return .failure(FileProblem(reason: reason))
        }
        guard dwfl_report_end(dwfl, nil, nil) == 0 else {
            let reason = libdwflErrorMessage()
            dwfl_end(dwfl)
            return .failure(FileProblem(reason: reason))
        }
        let locator = DebugFileLocator(mainPath: path, mainIdentity: identity, buildID: buildID,
                                       debugDirectories: debugDirectories, images: images)
        var userdata: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
        _ = dwfl_module_info(module, &userdata, nil, nil, nil, nil, nil, nil)
        userdata?.pointee = Unmanaged.passUnretained(locator).toOpaque()
        return .success(ModuleDebugInfo(dwfl: dwfl, module: module, locator: locator, buildID: buildID))
    }

    private init(dwfl: OpaquePointer, module: OpaquePointer, locator: DebugFileLocator, buildID: [UInt8]) {
        self.dwfl = dwfl
        self.module = module
        self.locator = locator
        self.buildID = buildID
    }

    deinit {
        dwfl_end(dwfl)
    }

    /// True if DWARF with code ranges was found, in the file itself or in a separate debug file.
    var hasDebugInfo: Bool { dwarf.map { !$0.units.isEmpty } ?? false }

    /// Debug files found for this module (separate debug file, then dwz alt file).
    var debugFilePaths: [String] { locator.foundPaths }

    /// The module's DWARF and its unit index, loaded on first use (this is when libdwfl looks for
    /// a separate debug file). Nil without DWARF.
    private lazy var dwarf: LoadedDWARF? = {
        var bias: Dwarf_Addr = 0
        guard let handle = dwfl_module_getdwarf(module, &bias) else { return nil }
        let loaded = LoadedDWARF(bias: bias, handle: handle, units: UnitIndex(dwarf: handle),
                                 lines: LineTableReader(dwarf: handle),
                                 sections: dwarf_getelf(handle).map(MappedDebugSections.init) ?? MappedDebugSections())
        loaded.sections.release()
        return loaded
    }()

    private lazy var symbols = SymbolIndex(module: module)

    private struct LoadedDWARF {
        /// Module address minus DWARF address (non-zero only for prelinked files).
        let bias: Dwarf_Addr
        let handle: OpaquePointer
        let units: UnitIndex
        /// Line tables, read apart from `handle` (LineTables.swift); nil when they cannot be.
        let lines: LineTableReader?
        /// Given back to the page cache after each step that walks a unit (indexing the units, a
        /// unit's functions, its line table).
        let sections: MappedDebugSections
    }

    // MARK: Lookup

    /// Function indexes of the units looked into so far, by unit number.
    private var functionIndexes: [Int: FunctionIndex] = [:]

    /// Source frames at module address `offset`, innermost inlined function first and the
    /// function the code physically belongs to last. Empty when nothing at all is known.
    func frames(at offset: UInt64) -> [SourceFrame] {
        // The bias is a difference of addresses and may wrap (prelinked files).
        if let dwarf, let unitNumber = dwarf.units.unit(containing: offset &- dwarf.bias) {
            let address = offset &- dwarf.bias
            var unit = dwarf.units.die(unitNumber)
            let unitsRead = (dwarf.lines?.unitsRead ?? 0, functionIndexes.count)
            let lineLocation = sourceLocation(unit: &unit, address: address)
            let functions = functionIndex(unitNumber, unit: dwarf.units.functionsDie(unitNumber))
            if unitsRead != (dwarf.lines?.unitsRead ?? 0, functionIndexes.count) { dwarf.sections.release() }
            if let function = functions.function(containing: address) {
                return inlineChain(inlineScopes(in: function, containing: address), fileAddress: offset,
                                   innermostLocation: lineLocation)
            }
            if let lineLocation {
                return [SourceFrame(function: symbolName(at: offset), file: lineLocation.file,
                                    line: lineLocation.line, column: lineLocation.column, isInlined: false)]
            }
        }
        // No DWARF covers the address: the symbol table is what remains.
        guard let symbol = symbolName(at: offset) else { return [] }
        return [SourceFrame(function: symbol, file: nil, line: nil, column: nil, isInlined: false)]
    }

    private func functionIndex(_ unitNumber: Int, unit: Dwarf_Die) -> FunctionIndex {
        if let known = functionIndexes[unitNumber] { return known }
        let index = FunctionIndex(unit: unit)
        functionIndexes[unitNumber] = index
        return index
    }

    private struct Location {
        var file: String?
        var line: Int?
        var column: Int?
    }

    /// The line-table row covering `address` in `unit`: the innermost source position.
    private func sourceLocation(unit: inout Dwarf_Die, address: Dwarf_Addr) -> Location? {
        guard let table = lineTable(of: &unit) else { return libdwSourceLocation(unit: &unit, address: address) }
        guard let row = table.row(at: address), row.file >= 0 else { return nil }
        return Location(file: reportedFile(Int(row.file), of: table, unit: &unit),
                        line: row.line > 0 ? Int(row.line) : nil, column: row.column > 0 ? Int(row.column) : nil)
    }

    /// `sourceLocation` through the unit's own Dwarf handle, for units the line table reader
    /// does not cover.
    private func libdwSourceLocation(unit: inout Dwarf_Die, address: Dwarf_Addr) -> Location? {
        guard let row = dwarf_getsrc_die(&unit, address), let file = dwarf_linesrc(row, nil, nil) else { return nil }
        var line: Int32 = 0
        var column: Int32 = 0
        if dwarf_lineno(row, &line) != 0 { line = 0 }
        if dwarf_linecol(row, &column) != 0 { column = 0 }
        return Location(file: internedFile(file, unit: &unit), line: line > 0 ? Int(line) : nil,
                        column: column > 0 ? Int(column) : nil)
    }

    /// The line table of `unit` when it is a unit of the module's own DWARF (not of a dwz or
    /// split DWARF file) and the reader could read it; nil otherwise.
    private func lineTable(of unit: inout Dwarf_Die) -> LineTable? {
        guard let dwarf, let lines = dwarf.lines, dwarf_cu_getdwarf(unit.cu) == dwarf.handle else { return nil }
        return lines.table(unitOffset: dwarf_dieoffset(&unit))
    }

    /// Turns the scopes from the physical function down to the innermost inlined subroutine into
    /// frames, innermost first. The innermost frame is where the line table puts the address;
    /// each inlined subroutine's DW_AT_call_* attributes give the position of the call in the
    /// frame that encloses it.
    private func inlineChain(_ scopes: [Dwarf_Die], fileAddress: UInt64, innermostLocation: Location?) -> [SourceFrame] {
        var frames: [SourceFrame] = []
        var location = innermostLocation
        for (depth, scope) in scopes.enumerated().reversed() {
            var die = scope
            let isInlined = depth > 0
            let name = isInlined ? functionName(of: &die) : physicalFunctionName(of: &die, at: fileAddress)
            frames.append(SourceFrame(function: name, file: location?.file, line: location?.line,
                                      column: location?.column, isInlined: isInlined))
            if isInlined { location = callSite(of: &die) }
        }
        return frames
    }

    /// Where an inlined subroutine was called from, in its caller's source.
    private func callSite(of inlined: UnsafeMutablePointer<Dwarf_Die>) -> Location? {
        guard let fileIndex = unsignedAttribute(DW_AT_call_file, of: inlined) else { return nil }
        var unitDie = Dwarf_Die()
        guard dwarf_diecu(inlined, &unitDie, nil, nil) != nil else { return nil }
        var file: String?
        // libdw names the unused DWARF 4 entry 0 "???".
        if let table = lineTable(of: &unitDie) {
            if fileIndex < UInt64(table.fileCount), table.fileNames[Int(fileIndex)] != "???" {
                file = reportedFile(Int(fileIndex), of: table, unit: &unitDie)
            }
        } else {
            var files: OpaquePointer?
            var fileCount = 0
            if dwarf_getsrcfiles(&unitDie, &files, &fileCount) == 0, fileIndex < UInt64(fileCount),
               let name = dwarf_filesrc(files, Int(fileIndex), nil, nil), strcmp(name, "???") != 0 {
                file = internedFile(name, unit: &unitDie)
            }
        }
        let line = unsignedAttribute(DW_AT_call_line, of: inlined).flatMap { $0 > 0 ? Int($0) : nil }
        let column = unsignedAttribute(DW_AT_call_column, of: inlined).flatMap { $0 > 0 ? Int($0) : nil }
        guard file != nil || line != nil else { return nil }
        return Location(file: file, line: line, column: column)
    }

    // MARK: Names

    /// The name of the function a DIE describes, following DW_AT_abstract_origin and
    /// DW_AT_specification. A mangled linkage name wins: demangled, it carries the namespaces,
    /// template arguments and parameter types that DW_AT_name leaves out. An unmangled one is
    /// only an assembler label (glibc's `__GI___open` for `__open`), so the source name wins then.
    private func functionName(of die: UnsafeMutablePointer<Dwarf_Die>) -> String? {
        let linkage = linkageName(of: die)
        if let linkage, SymbolScheme(cString: linkage) != .plain { return demangledName(linkage) }
        if let plain = stringAttribute(DW_AT_name, of: die) { return internedName(plain) }
        return linkage.map(internedName)
    }

    /// Like `functionName`, but when DWARF has no mangled linkage name (C++ constructors, whose
    /// abstract DIE names only the class) a mangled ELF symbol at the address says more.
    private func physicalFunctionName(of die: UnsafeMutablePointer<Dwarf_Die>, at fileAddress: UInt64) -> String? {
        let linkage = linkageName(of: die)
        if let linkage, SymbolScheme(cString: linkage) != .plain { return demangledName(linkage) }
        if let symbol = symbolPointer(at: fileAddress), SymbolScheme(cString: symbol) != .plain {
            return demangledName(symbol)
        }
        if let plain = stringAttribute(DW_AT_name, of: die) { return internedName(plain) }
        if let linkage { return internedName(linkage) }
        return symbolName(at: fileAddress)
    }

    private func linkageName(of die: UnsafeMutablePointer<Dwarf_Die>) -> UnsafePointer<CChar>? {
        stringAttribute(DW_AT_linkage_name, of: die) ?? stringAttribute(DW_AT_MIPS_linkage_name, of: die)
    }

    /// The ELF function symbol (.symtab, else .gnu_debugdata, else .dynsym) at `fileAddress`, demangled.
    private func symbolName(at fileAddress: UInt64) -> String? {
        symbolPointer(at: fileAddress).map(demangledName)
    }

    private func symbolPointer(at fileAddress: UInt64) -> UnsafePointer<CChar>? {
        symbols.name(at: fileAddress)
    }

    private func demangledName(_ pointer: UnsafePointer<CChar>) -> String {
        let key = UnsafeRawPointer(pointer)
        if let known = namesByPointer[key] { return known }
        let name = Demangler.demangle(String(cString: pointer))
        namesByPointer[key] = name
        return name
    }

    private func internedName(_ pointer: UnsafePointer<CChar>) -> String {
        let key = UnsafeRawPointer(pointer)
        if let known = namesByPointer[key] { return known }
        let name = String(cString: pointer)
        namesByPointer[key] = name
        return name
    }

    /// File `index` of `table` (the line table of `unit`), as the report gives it.
    private func reportedFile(_ index: Int, of table: LineTable, unit: inout Dwarf_Die) -> String {
        if let known = table.reportedNames[index] { return known }
        let name = reportedFileName(table.fileNames[index], unit: &unit)
        table.reportedNames[index] = name
        return name
    }

    /// `reportedFileName` of a name in libdw's own memory, once per name.
    private func internedFile(_ pointer: UnsafePointer<CChar>, unit: inout Dwarf_Die) -> String {
        let key = UnsafeRawPointer(pointer)
        if let known = filesByPointer[key] { return known }
        let name = reportedFileName(String(cString: pointer), unit: &unit)
        filesByPointer[key] = name
        return name
    }

    /// A source file name from `unit`'s line table, made as absolute as the unit allows.
    /// Names relative to a directory other than the compilation directory come out of libdw
    /// 0.188 relative (clang's DWARF 5 tables, `-fdebug-prefix-map` builds such as Debian's),
    /// so they are joined with DW_AT_comp_dir here, then `.` and `..` are folded.
    private func reportedFileName(_ libdwName: String, unit: inout Dwarf_Die) -> String {
        var name = libdwName
        // Pseudo-files such as Swift's "<compiler-generated>" come with a directory that means nothing.
        let last = lastPathComponent(name)
        if last.hasPrefix("<"), last.hasSuffix(">") { return last }
        if !name.hasPrefix("/"), let directory = stringAttribute(DW_AT_comp_dir, of: &unit) {
            let compilationDirectory = String(cString: directory)
            if !compilationDirectory.isEmpty, name != compilationDirectory,
               !name.hasPrefix(compilationDirectory + "/") {
                name = joinPath(compilationDirectory, name)
            }
        }
        return lexicallyNormalizedPath(name)
    }

    // MARK: Attributes

    private func stringAttribute(_ name: Int, of die: UnsafeMutablePointer<Dwarf_Die>) -> UnsafePointer<CChar>? {
        var attribute = Dwarf_Attribute()
        guard dwarf_attr_integrate(die, UInt32(name), &attribute) != nil else { return nil }
        return dwarf_formstring(&attribute)
    }

    private func unsignedAttribute(_ name: Int, of die: UnsafeMutablePointer<Dwarf_Die>) -> UInt64? {
        var attribute = Dwarf_Attribute()
        guard dwarf_attr(die, UInt32(name), &attribute) != nil else { return nil }
        var value: Dwarf_Word = 0
        guard dwarf_formudata(&attribute, &value) == 0 else { return nil }
        return value
    }
}

/// libdwfl's message for its most recent error on this thread.
func libdwflErrorMessage() -> String {
    guard let message = dwfl_errmsg(-1) else { return "unknown libdwfl error" }
    return String(cString: message)
}
