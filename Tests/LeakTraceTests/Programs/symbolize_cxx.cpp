// Symbolization test program for C++ names, built -g -O0 as a PIE: a member function of a
// class template inside a namespace, called from a function in a nested namespace.
#include <cstdlib>

namespace leak {

template <typename T>
struct Box {
    __attribute__((noinline)) T *make(int count);
};

template <typename T>
T *Box<T>::make(int count)
{
    return static_cast<T *>(std::malloc(sizeof(T) * count)); // MARK:box_make_malloc
}

namespace detail {

__attribute__((noinline)) int *build(int count)
{
    Box<int> box;
    int *values = box.make(count); // MARK:build_calls_make
    return values;
}

} // namespace detail
} // namespace leak

int main(int argc, char **)
{
    int *values = leak::detail::build(argc);
    std::free(values);
    return 0;
}
