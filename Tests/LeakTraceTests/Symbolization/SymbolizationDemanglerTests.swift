// Demangler cases. Expected C++ output was checked with c++filt, Swift with `swift demangle`;
// the Rust symbols are real legacy-mangled ones emitted by rustc 1.95 (stable default mangling).

import Symbolization
import XCTest

final class SymbolizationDemanglerTests: XCTestCase {
    func testCxxNamesAreDemangled() {
        XCTAssertEqual(Demangler.demangle("_ZN4leak3BoxIiE4makeEi"), "leak::Box<int>::make(int)")
        XCTAssertEqual(Demangler.demangle("_ZNSt6vectorIiSaIiEE9push_backERKi"),
                       "std::vector<int, std::allocator<int> >::push_back(int const&)")
        XCTAssertEqual(Demangler.demangle("_ZNK3foo3BarclEv"), "foo::Bar::operator()() const")
    }

    func testCxxCloneSuffixesAreKept() {
        XCTAssertEqual(Demangler.demangle("_ZN4leak3BoxIiE4makeEi.cold"), "leak::Box<int>::make(int) [clone .cold]")
        XCTAssertEqual(Demangler.demangle("_ZL6helperv.constprop.0"), "helper() [clone .constprop.0]")
    }

    func testSwiftNamesAreDemangled() {
        XCTAssertEqual(Demangler.demangle("$sSS"), "Swift.String")
        XCTAssertEqual(Demangler.demangle("$s4main3fooyyF"), "main.foo() -> ()")
        XCTAssertEqual(Demangler.demangle("$sSiN"), "type metadata for Swift.Int")
        XCTAssertEqual(Demangler.demangle("_T0SiN"), "type metadata for Swift.Int")
    }

    func testRustLegacyNamesAreDemangledWithoutTheHash() {
        XCTAssertEqual(Demangler.demangle("_ZN3lib12make_wrapper17hc4748cc7bea096f9E"), "lib::make_wrapper")
        XCTAssertEqual(Demangler.demangle("_ZN47_$LT$$RF$$u5b$u8$u5d$$u20$as$u20$lib..Speak$GT$5speak17h7e41f64eee3e7da9E"),
                       "<&[u8] as lib::Speak>::speak")
        XCTAssertEqual(Demangler.demangle("_ZN3lib4main28_$u7b$$u7b$closure$u7d$$u7d$17h0123456789abcdefE"),
                       "lib::main::{{closure}}")
    }

    /// Rust's v0 scheme: rustc 1.95's standard library is built with it. Expected output is
    /// binutils' c++filt's (the same libiberty) without the crate hashes it prints.
    func testRustV0NamesAreDemangled() {
        XCTAssertEqual(Demangler.demangle("_RNvMs4_NtCslNYArtu3iFV_5alloc7raw_vecNtB5_11RawVecInner11finish_growCsduwmD7cSIQq_5gimli"),
                       "<alloc::raw_vec::RawVecInner>::finish_grow")
        XCTAssertEqual(Demangler.demangle("_RNvCs1234_7mycrate4main"), "mycrate::main")
        // `_R` without a path tag is not a v0 name.
        XCTAssertEqual(Demangler.demangle("_Rsomething"), "_Rsomething")
    }

    func testRustLegacySuffixes() {
        // LLVM's uniquing suffix is noise; other suffixes describe the code and stay.
        XCTAssertEqual(Demangler.demangle("_ZN3lib12make_wrapper17hc4748cc7bea096f9E.llvm.1234567890"), "lib::make_wrapper")
        XCTAssertEqual(Demangler.demangle("_ZN3lib12make_wrapper17hc4748cc7bea096f9E.cold"), "lib::make_wrapper.cold")
    }

    func testNamesThatAreNotMangledOrNotUnderstoodAreReturnedAsIs() {
        XCTAssertEqual(Demangler.demangle("malloc"), "malloc")
        XCTAssertEqual(Demangler.demangle(""), "")
        XCTAssertEqual(Demangler.demangle("_RNvC"), "_RNvC")   // a v0 name cut short
        XCTAssertEqual(Demangler.demangle("_Z"), "_Z")
        XCTAssertEqual(Demangler.demangle("_ZN3foo"), "_ZN3foo")
        XCTAssertEqual(Demangler.demangle("_ZN99foo17h0123456789abcdefE"), "_ZN99foo17h0123456789abcdefE")
        XCTAssertEqual(Demangler.demangle("$sNotReallySwift!!"), "$sNotReallySwift!!")
    }

    /// A legacy-shaped symbol whose last element is not a hash is C++ (a variable in a namespace).
    func testNestedNameWithoutRustHashIsTreatedAsCxx() {
        XCTAssertEqual(Demangler.demangle("_ZN3foo3barE"), "foo::bar")
    }
}
