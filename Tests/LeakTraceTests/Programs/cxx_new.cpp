// operator new reaches malloc through libstdc++: the trace must show new's frame and its caller.
#include <cstdio>
#include <string>
#include <vector>

struct Widget {
    int values[16];
};

namespace shop {
template <typename T> struct Factory {
    __attribute__((noinline)) static T *make() { return new T(); }
};
}  // namespace shop

__attribute__((noinline)) std::vector<int> *make_vector() { return new std::vector<int>(1000); }

int main() {
    Widget *w = shop::Factory<Widget>::make();     // leaked
    std::vector<int> *v = make_vector();           // leaked (object and its buffer)
    delete new Widget();                           // freed
    std::printf("%d %zu\n", w->values[0], v->size());
    return 0;
}
