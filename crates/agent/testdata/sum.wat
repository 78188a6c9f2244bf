;; A WASI command that sums the integers in its stdin (the plugin's parameters as JSON):
;; non-negative integers only; [1, 2, 3] or {"a": 1, "b": 2, "c": 3} -> 6. No library: fd_read and fd_write only.
;; Reads at most 1024 bytes.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 0: iovec {buf=64, len=1024}; 8: bytes read; 64..1088: input; 2048..: output digits
  (func (export "_start")
    (local $n i32) (local $i i32) (local $c i32) (local $cur i32) (local $sum i32) (local $in i32) (local $p i32)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 1024))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (local.set $n (i32.load (i32.const 8)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $c (i32.load8_u (i32.add (i32.const 64) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $c) (i32.const 48)) (i32.le_u (local.get $c) (i32.const 57)))
          (then
            (local.set $cur (i32.add (i32.mul (local.get $cur) (i32.const 10)) (i32.sub (local.get $c) (i32.const 48))))
            (local.set $in (i32.const 1)))
          (else
            (local.set $sum (i32.add (local.get $sum) (local.get $cur)))
            (local.set $cur (i32.const 0))
            (local.set $in (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.set $sum (i32.add (local.get $sum) (local.get $cur)))
    ;; digits, written backwards from 2100
    (local.set $p (i32.const 2100))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $sum) (i32.const 10))))
      (local.set $sum (i32.div_u (local.get $sum) (i32.const 10)))
      (br_if $digit (i32.ne (local.get $sum) (i32.const 0))))
    (i32.store (i32.const 16) (local.get $p))
    (i32.store (i32.const 20) (i32.sub (i32.const 2100) (local.get $p)))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))))
