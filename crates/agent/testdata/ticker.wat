;; An asynchronous WASI command: writes "tick" to stdout (the plugin log) every 50 ms, forever.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "tick\n")
  ;; 0..48: a clock subscription (tag 0, monotonic clock, 50 ms, relative); 100: iovec of "tick\n";
  ;; 304: the event (8-aligned); 400: events written; 120: bytes written.
  (func (export "_start")
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 50000000))
    (i64.store (i32.const 32) (i64.const 0))
    (i32.store16 (i32.const 40) (i32.const 0))
    (i32.store (i32.const 100) (i32.const 200))
    (i32.store (i32.const 104) (i32.const 5))
    (loop $forever
      (drop (call $poll (i32.const 0) (i32.const 304) (i32.const 1) (i32.const 400)))
      (drop (call $fd_write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 120)))
      (br $forever))))
