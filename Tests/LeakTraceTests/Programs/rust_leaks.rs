// Rust leaks for the analyzer's end-to-end test (CLIEndToEndTests): each kept past the end of
// the program with mem::forget, so each block's call site is the function below that allocated
// it, whatever the alloc crate (Box, RawVec's growth, collect) did in between.
struct Node {
    next: Option<Box<Node>>,
    data: [u8; 64],
}

// Five 72-byte nodes (a Box and 64 bytes), each by Box::new.
#[inline(never)]
fn make_list(n: usize) -> Box<Node> {
    let mut head = Box::new(Node { next: None, data: [0; 64] }); // @list_first
    for _ in 1..n {
        head = Box::new(Node { next: Some(head), data: [1; 64] }); // @list_rest
    }
    head
}

// 100 u32 pushed one at a time: RawVec grows 4, 8, ... 128 elements, 512 bytes at the end.
#[inline(never)]
fn make_buffer(n: usize) -> Vec<u32> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(i as u32); // @buffer
    }
    v
}

// 50 times "abc": the String grows 8, 16, ... 256 bytes.
#[inline(never)]
fn make_text(n: usize) -> String {
    let mut s = String::new();
    for _ in 0..n {
        s.push_str("abc"); // @text
    }
    s
}

fn main() {
    std::mem::forget(make_list(5));
    std::mem::forget(make_buffer(100));
    std::mem::forget(make_text(50));
    let collected: Vec<u64> = (0..10).collect(); // @collect
    std::mem::forget(collected);
}
