// A Swift program for ReleaseBuildTests: one object, and the array it holds, allocated in
// keepForever() and never released (its only reference is dropped unbalanced).
final class Holder {
    var payload = [UInt8](repeating: 1, count: 4000)
}

@inline(never) func keepForever() {
    _ = Unmanaged.passRetained(Holder())
}

keepForever()
