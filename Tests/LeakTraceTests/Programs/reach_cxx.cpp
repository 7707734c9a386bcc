// A C++ object graph for the reachability tests (Tests/.../Tracer/ReachabilityTests.swift).
// By design, at exit:
//   kept_index      a global std::map<std::string, std::vector<int>>: its tree nodes, their
//                   long keys' buffers and the vectors' arrays are all still reachable
//   leaked_graph    a Graph with two Node children, each holding a std::string longer than the
//                   small-string buffer, leaked: the Graph definitely lost, the rest indirectly
//   kept_array      new Tracked[3] (a count before the objects) held by a global: still
//                   reachable through memcheck's new[] heuristic
//   kept_second     a Both object held only through its second base: still reachable through
//                   the multiple-inheritance heuristic
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct Node {
    std::string label;
    std::vector<int> values;
};

struct Graph {
    std::unique_ptr<Node> left, right;
};

struct Tracked {
    long id = 7;
    ~Tracked() { id = 0; }
};

struct First {
    virtual ~First() {}
    virtual long one() { return 1; }
    virtual long two() { return 2; }
    long a = 1;
};

struct Second {
    virtual ~Second() {}
    virtual long three() { return 3; }
    virtual long four() { return 4; }
    long b = 2;
};

struct Both : First, Second {
    long c = 3;
};

static std::map<std::string, std::vector<int>> *index_slot;
static Tracked *volatile array_slot;
static Second *volatile second_slot;

__attribute__((noinline)) static void kept_index() {
    index_slot = new std::map<std::string, std::vector<int>>;
    for (int i = 0; i < 3; i++)
        (*index_slot)["a key long enough to need its own buffer " + std::to_string(i)] = std::vector<int>(10 + i, i);
}

__attribute__((noinline)) static void leaked_graph() {
    Graph *g = new Graph;
    g->left.reset(new Node{std::string(40, 'l'), std::vector<int>(5, 1)});
    g->right.reset(new Node{std::string(50, 'r'), std::vector<int>(6, 2)});
    g = nullptr;
}

__attribute__((noinline)) static void kept_array() { array_slot = new Tracked[3]; }

__attribute__((noinline)) static void kept_second() { second_slot = new Both; }

__attribute__((noinline)) static void scrub() {
    volatile char junk[4096];
    for (auto &c : junk) c = 0;
}

int main() {
    kept_index();
    leaked_graph();
    kept_array();
    kept_second();
    scrub();
    std::printf("graph done\n");
    return 0;
}
