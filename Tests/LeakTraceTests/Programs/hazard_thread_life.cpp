// Hazard 11, thread lifecycle:
//  - 300 rounds of creating four threads and joining them, each allocating and freeing;
//  - 200 detached threads that allocate, free and exit while four long-lived threads allocate;
//  - every thread that touches `scratch` has a C++ thread_local whose destructor, run at thread
//    exit (after the thread's function returned), allocates a 5151-byte block and frees it.
// Nothing leaks. Output is deterministic.
#include <pthread.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

static std::atomic<long> destructors{0};
static std::atomic<long> detached_done{0};
static std::atomic<bool> stop{false};

struct ExitScratch {
    char *buffer = nullptr;
    void touch() {
        if (!buffer) buffer = static_cast<char *>(std::malloc(5150));
    }
    ~ExitScratch() {
        char *last = static_cast<char *>(std::malloc(5151));
        std::memset(last, 1, 5151);
        std::free(last);
        std::free(buffer);
        destructors.fetch_add(1);
    }
};

static thread_local ExitScratch scratch;

static void joined_body(int round) {
    scratch.touch();
    for (int k = 0; k < 50; k++) std::free(std::malloc(128 + static_cast<size_t>((round + k) % 256)));
}

static void *detached_body(void *) {
    scratch.touch();
    for (int k = 0; k < 100; k++) std::free(std::malloc(600 + static_cast<size_t>(k)));
    detached_done.fetch_add(1);
    return nullptr;
}

static void steady_body(int id) {
    scratch.touch();
    for (long n = 0; !stop.load(); n++) {
        void *p = std::malloc(2000 + static_cast<size_t>(id));
        std::free(p);
        if (n % 64 == 63) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
}

int main() {
    std::vector<std::thread> steady;
    for (int i = 0; i < 4; i++) steady.emplace_back(steady_body, i);
    for (int round = 0; round < 300; round++) {
        std::thread a(joined_body, round), b(joined_body, round + 1), c(joined_body, round + 2),
            d(joined_body, round + 3);
        a.join();
        b.join();
        c.join();
        d.join();
    }
    for (int i = 0; i < 200; i++) {
        pthread_t t;
        if (pthread_create(&t, nullptr, detached_body, nullptr) != 0) return 1;
        pthread_detach(t);
    }
    while (detached_done.load() < 200) std::this_thread::yield();
    // A detached thread counts itself done before its destructors run: wait for those too.
    while (destructors.load() < 1200 + 200) std::this_thread::yield();
    stop.store(true);
    for (auto &t : steady) t.join();
    std::printf("joined=1200 detached=200 destructors=%ld\n", destructors.load());
    return 0;
}
