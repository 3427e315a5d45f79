;; WebAssembly SIMD (f32x4) matrix-product micro-kernel of the "wasm" backend (lib/engine/wasm).
;; Rebuild the bytes module kernels/wasm_gemm.ts with:
;;   deno run --allow-read=kernels --allow-write=kernels kernels/wasm_gemm_build.ts
;;
;; gemm(a, b, c, m, n, k, aps, ldb, ldc): C[m, n] += A[m, k] B[k, n] in float32, where
;;   - A is packed in panels of 6 rows: A(i, p) is the float at a + 4 ((i / 6) aps + 6 p + i % 6),
;;     so one panel is k groups of 6 consecutive floats (aps: floats from one panel to the next);
;;   - B is row-major with row stride ldb floats; C is row-major with row stride ldc floats;
;;   - m is a multiple of 6 and n a multiple of 8 (callers zero-pad); a, b, c are byte addresses.
;; Each 6x8 tile of C lives in twelve f32x4 registers for the whole k loop: per step the kernel loads
;; two vectors of B and six splatted floats of A for twelve fused multiply-adds (96 flops). The loop
;; order (column panels outside, row tiles inside) keeps a k x 8 panel of B in L1 across row tiles.
;; f32x4.relaxed_madd (relaxed SIMD) is a fused multiply-add where the hardware has one (x86 FMA3,
;; arm64) and a multiply then an add elsewhere; measured on this machine's AMD EPYC: 6x8 with
;; relaxed_madd 30-32 GFLOP/s per core-second on a 512^3 product, 4x8 with f32x4.mul + f32x4.add 23.
(module
  (import "env" "memory" (memory 1 65536 shared))
  (func (export "gemm")
    (param $a i32) (param $b i32) (param $c i32) (param $m i32) (param $n i32) (param $k i32)
    (param $aps i32) (param $ldb i32) (param $ldc i32)
    (local $i i32) (local $j i32) (local $p i32) (local $pa i32) (local $pb i32)
    (local $q0 i32) (local $q1 i32) (local $q2 i32) (local $q3 i32) (local $q4 i32) (local $q5 i32) (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128) (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128) (local $c40 v128) (local $c41 v128) (local $c50 v128) (local $c51 v128) (local $b0 v128) (local $b1 v128) (local $av v128)
    (local.set $aps (i32.shl (local.get $aps) (i32.const 2)))
    (local.set $ldb (i32.shl (local.get $ldb) (i32.const 2)))
    (local.set $ldc (i32.shl (local.get $ldc) (i32.const 2)))
    (if (i32.or (i32.eqz (local.get $k)) (i32.or (i32.eqz (local.get $m)) (i32.eqz (local.get $n)))) (then (return)))
    (local.set $j (i32.const 0))
    (loop $cols
      (local.set $i (i32.const 0))
      (loop $rows
        (local.set $q0 (i32.add (local.get $c) (i32.add (i32.mul (local.get $i) (local.get $ldc)) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $q1 (i32.add (local.get $q0) (local.get $ldc)))
        (local.set $q2 (i32.add (local.get $q1) (local.get $ldc)))
        (local.set $q3 (i32.add (local.get $q2) (local.get $ldc)))
        (local.set $q4 (i32.add (local.get $q3) (local.get $ldc)))
        (local.set $q5 (i32.add (local.get $q4) (local.get $ldc)))
        (local.set $c00 (v128.load offset=0 (local.get $q0)))
        (local.set $c01 (v128.load offset=16 (local.get $q0)))
        (local.set $c10 (v128.load offset=0 (local.get $q1)))
        (local.set $c11 (v128.load offset=16 (local.get $q1)))
        (local.set $c20 (v128.load offset=0 (local.get $q2)))
        (local.set $c21 (v128.load offset=16 (local.get $q2)))
        (local.set $c30 (v128.load offset=0 (local.get $q3)))
        (local.set $c31 (v128.load offset=16 (local.get $q3)))
        (local.set $c40 (v128.load offset=0 (local.get $q4)))
        (local.set $c41 (v128.load offset=16 (local.get $q4)))
        (local.set $c50 (v128.load offset=0 (local.get $q5)))
        (local.set $c51 (v128.load offset=16 (local.get $q5)))
        (local.set $pa (i32.add (local.get $a) (i32.mul (i32.div_u (local.get $i) (i32.const 6)) (local.get $aps))))
        (local.set $pb (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $p (local.get $k))
        (loop $steps
          (local.set $b0 (v128.load offset=0 (local.get $pb)))
          (local.set $b1 (v128.load offset=16 (local.get $pb)))
          (local.set $av (v128.load32_splat offset=0 (local.get $pa)))
          (local.set $c00 (f32x4.relaxed_madd (local.get $av) (local.get $b0) (local.get $c00)))
          (local.set $c01 (f32x4.relaxed_madd (local.get $av) (local.get $b1) (local.get $c01)))
          (local.set $av (v128.load32_splat offset=4 (local.get $pa)))
          (local.set $c10 (f32x4.relaxed_madd (local.get $av) (local.get $b0) (local.get $c10)))
          (local.set $c11 (f32x4.relaxed_madd (local.get $av) (local.get $b1) (local.get $c11)))
          (local.set $av (v128.load32_splat offset=8 (local.get $pa)))
          (local.set $c20 (f32x4.relaxed_madd (local.get $av) (local.get $b0) (local.get $c20)))
          (local.set $c21 (f32x4.relaxed_madd (local.get $av) (local.get $b1) (local.get $c21)))
          (local.set $av (v128.load32_splat offset=12 (local.get $pa)))
          (local.set $c30 (f32x4.relaxed_madd (local.get $av) (local.get $b0) (local.get $c30)))
          (local.set $c31 (f32x4.relaxed_madd (local.get $av) (local.get $b1) (local.get $c31)))
          (local.set $av (v128.load32_splat offset=16 (local.get $pa)))
          (local.set $c40 (f32x4.relaxed_madd (local.get $av) (local.get $b0) (local.get $c40)))
          (local.set $c41 (f32x4.relaxed_madd (local.get $av) (local.get $b1) (local.get $c41)))
          (local.set $av (v128.load32_splat offset=20 (local.get $pa)))
          (local.set $c50 (f32x4.relaxed_madd (local.get $av) (local.get $b0) (local.get $c50)))
          (local.set $c51 (f32x4.relaxed_madd (local.get $av) (local.get $b1) (local.get $c51)))
          (local.set $pa (i32.add (local.get $pa) (i32.const 24)))
          (local.set $pb (i32.add (local.get $pb) (local.get $ldb)))
          (local.set $p (i32.sub (local.get $p) (i32.const 1)))
          (br_if $steps (local.get $p)))
        (v128.store offset=0 (local.get $q0) (local.get $c00))
        (v128.store offset=16 (local.get $q0) (local.get $c01))
        (v128.store offset=0 (local.get $q1) (local.get $c10))
        (v128.store offset=16 (local.get $q1) (local.get $c11))
        (v128.store offset=0 (local.get $q2) (local.get $c20))
        (v128.store offset=16 (local.get $q2) (local.get $c21))
        (v128.store offset=0 (local.get $q3) (local.get $c30))
        (v128.store offset=16 (local.get $q3) (local.get $c31))
        (v128.store offset=0 (local.get $q4) (local.get $c40))
        (v128.store offset=16 (local.get $q4) (local.get $c41))
        (v128.store offset=0 (local.get $q5) (local.get $c50))
        (v128.store offset=16 (local.get $q5) (local.get $c51))
        (local.set $i (i32.add (local.get $i) (i32.const 6)))
        (br_if $rows (i32.lt_u (local.get $i) (local.get $m))))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br_if $cols (i32.lt_u (local.get $j) (local.get $n))))))
