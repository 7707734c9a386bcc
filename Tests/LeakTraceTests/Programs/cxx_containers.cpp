// C++ standard containers that leak with their holder, for the analyzer's end-to-end test
// (CLIEndToEndTests): each block's call site is the line of fill() that used the container,
// not the library's code (std::_Vector_base::_M_allocate, _Rb_tree::_M_get_node, ...).
#include <map>
#include <memory>
#include <string>
#include <vector>

struct Holder {
    std::vector<int> numbers;
    std::string text;
    std::map<int, int> table;
    std::shared_ptr<int> shared;
};

__attribute__((noinline)) Holder *fill() {
    Holder *holder = new Holder(); // @holder
    // 100 ints pushed one at a time: the array doubles from 1 to 128 (512 bytes).
    for (int i = 0; i < 100; i++) holder->numbers.push_back(i); // @vector
    // 200 characters and the terminator, past the string's 15-byte inline buffer.
    holder->text = std::string(200, 'x'); // @string
    // Five tree nodes of 40 bytes (links, colour, the pair).
    for (int i = 0; i < 5; i++) holder->table[i] = i; // @map
    // The control block and the int in one 24-byte block.
    holder->shared = std::make_shared<int>(5); // @shared
    return holder;
}

int main() {
    Holder *volatile kept = fill();
    kept = nullptr;
    return 0;
}
