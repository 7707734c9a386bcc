// C++ leaks behind operator new and new[], for the analyzer's end-to-end tests.
#include <cstddef>

namespace shapes {
struct Widget {
    int data[8];
    Widget() : data{} {}
};

__attribute__((noinline)) Widget *make_widget() {
    return new Widget(); // @widget
}

template <typename T> __attribute__((noinline)) T *make_array(std::size_t count) {
    return new T[count]; // @array
}
} // namespace shapes

int main() {
    for (int i = 0; i < 3; i++) shapes::make_widget();
    shapes::make_array<long>(16);
    delete shapes::make_widget();
    return 0;
}
