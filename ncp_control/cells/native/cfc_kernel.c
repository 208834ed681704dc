/* Wired CfC (one CfC layer per wiring layer): forward and hand-derived backward over whole sequences.
 *
 * Compiled on first use by ncp_control/cells/native.py and called through ctypes from cells/cfc_fast.py, which
 * documents the argument tables. Instantiated for float (_f32) and double (_f64) inputs and outputs; every
 * computation runs in double. Per-sample quantities are stored transposed, [feature][batch], so that the loops
 * over the batch are innermost; masked weights (zero in the wiring's mask) are skipped.
 *
 * Layer l reads z = [input of the layer (the inputs for l = 0, else layer l-1's new state), own previous state]
 * and computes four heads ff1, ff2, time_a, time_b (pre-activations, weights times mask plus bias); then
 *   default: h = tanh(ff1) (1 - g) + g tanh(ff2),  g = sigmoid(time_a t + time_b)
 *   no_gate: h = tanh(ff1) + g tanh(ff2)
 *   pure:    h = A - A exp(-t (|w_tau| + |ff1|)) ff1
 */
#ifndef NCP_REAL

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Integer table: fixed entries, then the layer sizes H_0 .. H_{L-1}. */
enum {
    C_T, C_B, C_L, C_I, C_N, C_MODE, C_MASK_GATES, C_X_ST, C_X_SB, C_H_SB, C_DT_ST, C_DT_SB, C_S_ST, C_S_SB,
    C_GS_ST, C_GS_SB, C_R_ST, C_R_SB, C_SIZES
};
/* Pointer table: fixed entries, then per layer 11 parameters (ff1.w, ff1.b, ff2.w, ff2.b, time_a.w, time_a.b,
 * time_b.w, time_b.b, mask, w_tau, A; absent ones NULL), then (backward) per layer their 11 gradients. */
enum { Q_X, Q_H0, Q_DT, Q_RESET, Q_STATES, Q_GSTATES, Q_GX, Q_GH0, Q_GDT, Q_LAYERS };
enum { W_FF1, B_FF1, W_FF2, B_FF2, W_TA, B_TA, W_TB, B_TB, W_MASK, W_TAU, W_A, W_COUNT };
enum { MODE_DEFAULT, MODE_NO_GATE, MODE_PURE };

#define NCP_OK 0
#define NCP_ENOMEM 1
#define NCP_EINVAL 2 /* more layers than the per-layer tables hold (64); Python checks this first */

#define NCP_REAL float
#define NCP_FN(name) name##_f32
#include __FILE__
#undef NCP_REAL
#undef NCP_FN

#define NCP_REAL double
#define NCP_FN(name) name##_f64
#include __FILE__
#undef NCP_REAL
#undef NCP_FN

#else /* ------------------------------------------------------------------ body, once per type */

#define real NCP_REAL
#define work double

/* Pre-activations of one head: out[o][b] = bias[o] + sum_k (w[o][k] * mask[o][k]) z[k][b]; mask may be NULL. */
static void NCP_FN(head)(int64_t H, int64_t K, int64_t B, const real *w, const real *bias, const real *mask,
                         const work *z, work *out) {
    for (int64_t o = 0; o < H; o++) {
        work *ob = out + o * B;
        const work b0 = bias[o];
        for (int64_t b = 0; b < B; b++) ob[b] = b0;
        for (int64_t k = 0; k < K; k++) {
            if (mask && mask[o * K + k] == 0) continue;
            const work wk = mask ? (work)w[o * K + k] * mask[o * K + k] : (work)w[o * K + k];
            const work *zk = z + k * B;
            for (int64_t b = 0; b < B; b++) ob[b] += wk * zk[b];
        }
    }
}

/* Backward of head: gw[o][k] += sum_b g[o][b] z[k][b] (times mask), gb[o] += sum_b g[o][b],
 * gz[k][b] += sum_o w[o][k] mask[o][k] g[o][b]. Accumulators in double. */
static void NCP_FN(head_back)(int64_t H, int64_t K, int64_t B, const real *w, const real *mask, const work *z,
                              const work *g, work *gz, double *gw, double *gb) {
    for (int64_t o = 0; o < H; o++) {
        const work *go = g + o * B;
        work sb = 0;
#pragma omp simd reduction(+ : sb)
        for (int64_t b = 0; b < B; b++) sb += go[b];
        gb[o] += sb;
        for (int64_t k = 0; k < K; k++) {
            if (mask && mask[o * K + k] == 0) continue;
            const work m = mask ? (work)mask[o * K + k] : 1;
            const work wk = (work)w[o * K + k] * m;
            const work *zk = z + k * B;
            work *gzk = gz + k * B;
            work s = 0;
#pragma omp simd reduction(+ : s)
            for (int64_t b = 0; b < B; b++) {
                s += go[b] * zk[b];
                gzk[b] += wk * go[b];
            }
            gw[o * K + k] += s * m;
        }
    }
}

typedef struct {
    int64_t H, K, off; /* units, inputs of the heads (in + H), offset of the layer in the state */
    const real *p[W_COUNT];
} NCP_FN(layer);

static void NCP_FN(setup)(const int64_t *d, void **p, NCP_FN(layer) *ly) {
    const int64_t L = d[C_L];
    int64_t in = d[C_I], off = 0;
    for (int64_t l = 0; l < L; l++) {
        ly[l].H = d[C_SIZES + l];
        ly[l].K = in + ly[l].H;
        ly[l].off = off;
        for (int w = 0; w < W_COUNT; w++) ly[l].p[w] = (const real *)p[Q_LAYERS + l * W_COUNT + w];
        off += ly[l].H;
        in = ly[l].H;
    }
}

/* Load z = [layer input, previous state of the layer] for layer l at step t. xin: [in][B] (NULL for l = 0:
 * read the inputs x), hprev: [N][B] previous full state. */
static void NCP_FN(gather_z)(const int64_t *d, void **p, const NCP_FN(layer) *ly, int64_t l, int64_t t,
                             const work *newstate, const work *hprev, work *z) {
    const int64_t B = d[C_B];
    const int64_t in = ly[l].K - ly[l].H;
    if (l == 0) {
        const real *x = (const real *)p[Q_X];
        for (int64_t b = 0; b < B; b++) {
            const real *xr = x + t * d[C_X_ST] + b * d[C_X_SB];
            for (int64_t i = 0; i < in; i++) z[i * B + b] = xr[i];
        }
    } else {
        memcpy(z, newstate + ly[l - 1].off * B, sizeof(work) * (size_t)(in * B));
    }
    memcpy(z + in * B, hprev + ly[l].off * B, sizeof(work) * (size_t)(ly[l].H * B));
}

static inline work NCP_FN(sigm)(work x) { return 1 / (1 + exp(-x)); }

/* Heads and update of layer l: writes the layer's new state into hnew (its rows of [N][B]) and, if pre is given,
 * leaves the four pre-activations there ([4][H][B]). */
static void NCP_FN(layer_forward)(const int64_t *d, const NCP_FN(layer) *ly, const work *z, const work *ts,
                                  work *pre, work *hnew) {
    const int64_t B = d[C_B], H = ly->H, K = ly->K;
    const int mode = (int)d[C_MODE], gates_masked = (int)d[C_MASK_GATES];
    const real *mask = ly->p[W_MASK];
    work *f1 = pre, *f2 = pre + H * B, *ta = pre + 2 * H * B, *tb = pre + 3 * H * B;
    NCP_FN(head)(H, K, B, ly->p[W_FF1], ly->p[B_FF1], mask, z, f1);
    if (mode != MODE_PURE) {
        NCP_FN(head)(H, K, B, ly->p[W_FF2], ly->p[B_FF2], mask, z, f2);
        NCP_FN(head)(H, K, B, ly->p[W_TA], ly->p[B_TA], gates_masked ? mask : NULL, z, ta);
        NCP_FN(head)(H, K, B, ly->p[W_TB], ly->p[B_TB], gates_masked ? mask : NULL, z, tb);
    }
    for (int64_t o = 0; o < H; o++) {
        work *out = hnew + (ly->off + o) * B;
        const work *a1 = f1 + o * B, *a2 = f2 + o * B, *aa = ta + o * B, *ab = tb + o * B;
        if (mode == MODE_PURE) {
            const work A = ly->p[W_A][o], wt = fabs((work)ly->p[W_TAU][o]);
            for (int64_t b = 0; b < B; b++) out[b] = -A * exp(-ts[b] * (wt + fabs(a1[b]))) * a1[b] + A;
        } else {
            for (int64_t b = 0; b < B; b++) {
                work g = NCP_FN(sigm)(aa[b] * ts[b] + ab[b]);
                work t1 = tanh(a1[b]), t2 = tanh(a2[b]);
                out[b] = mode == MODE_NO_GATE ? t1 + g * t2 : t1 * (1 - g) + g * t2;
            }
        }
    }
}

static void NCP_FN(load_times)(const int64_t *d, void **p, int64_t t, work *ts) {
    const real *dt = (const real *)p[Q_DT];
    for (int64_t b = 0; b < d[C_B]; b++) ts[b] = dt[t * d[C_DT_ST] + b * d[C_DT_SB]];
}

static int64_t NCP_FN(max_k)(const int64_t *d, const NCP_FN(layer) *ly) {
    int64_t m = 0;
    for (int64_t l = 0; l < d[C_L]; l++) m = ly[l].K > m ? ly[l].K : m;
    return m;
}

int NCP_FN(cfc_forward)(const int64_t *d, void **p) {
    const int64_t T = d[C_T], B = d[C_B], L = d[C_L], N = d[C_N];
    NCP_FN(layer) ly[64];
    if (L < 1 || L > 64) return NCP_EINVAL;
    NCP_FN(setup)(d, p, ly);
    const int64_t KM = NCP_FN(max_k)(d, ly);
    work *ws = (work *)malloc(sizeof(work) * (size_t)(2 * N * B + KM * B + 4 * N * B + B));
    if (!ws) return NCP_ENOMEM;
    work *h = ws, *hn = ws + N * B, *z = ws + 2 * N * B, *pre = z + KM * B, *ts = pre + 4 * N * B;
    const real *h0 = (const real *)p[Q_H0];
    real *states = (real *)p[Q_STATES];
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < N; j++) h[j * B + b] = h0[b * d[C_H_SB] + j];
    const uint8_t *reset = (const uint8_t *)p[Q_RESET];
    for (int64_t t = 0; t < T; t++) {
        if (reset) /* episode start: the state is zero before this step */
            for (int64_t b = 0; b < B; b++)
                if (reset[t * d[C_R_ST] + b * d[C_R_SB]])
                    for (int64_t j = 0; j < N; j++) h[j * B + b] = 0;
        NCP_FN(load_times)(d, p, t, ts);
        for (int64_t l = 0; l < L; l++) {
            NCP_FN(gather_z)(d, p, ly, l, t, hn, h, z);
            NCP_FN(layer_forward)(d, &ly[l], z, ts, pre, hn);
            /* each layer's state has the caller's precision, as between the torch layers */
            work *rows = hn + ly[l].off * B;
            for (int64_t i = 0; i < ly[l].H * B; i++) rows[i] = (work)(real)rows[i];
        }
        memcpy(h, hn, sizeof(work) * (size_t)(N * B));
        for (int64_t b = 0; b < B; b++) {
            real *s = states + t * d[C_S_ST] + b * d[C_S_SB];
            for (int64_t j = 0; j < N; j++) s[j] = (real)h[j * B + b];
        }
    }
    free(ws);
    return NCP_OK;
}

/* Backward of cfc_forward; needs the states it wrote. Parameter gradients are written (not accumulated) into the
 * caller's arrays; gx (T,B,I), gh0 (B,N) and gdt (T,B) are contiguous and optional. */
int NCP_FN(cfc_backward)(const int64_t *d, void **p) {
    const int64_t T = d[C_T], B = d[C_B], L = d[C_L], N = d[C_N], I = d[C_I];
    const int mode = (int)d[C_MODE], gates_masked = (int)d[C_MASK_GATES];
    NCP_FN(layer) ly[64];
    if (L < 1 || L > 64) return NCP_EINVAL;
    NCP_FN(setup)(d, p, ly);
    const int64_t KM = NCP_FN(max_k)(d, ly);
    int64_t n_acc = 0;
    for (int64_t l = 0; l < L; l++) n_acc += 4 * ly[l].H * ly[l].K + 6 * ly[l].H;
    work *ws = (work *)malloc(sizeof(work) * (size_t)(5 * N * B + 2 * KM * B + 4 * N * B + 4 * N * B + 2 * B));
    double *acc = (double *)calloc((size_t)n_acc + 1, sizeof(double));
    if (!ws || !acc) { free(ws); free(acc); return NCP_ENOMEM; }
    work *hprev = ws, *hnew = ws + N * B, *g = ws + 2 * N * B, *gprev = ws + 3 * N * B;
    work *z = ws + 4 * N * B, *gz = z + KM * B, *pre = gz + KM * B, *gpre = pre + 4 * N * B, *ts = gpre + 4 * N * B;
    work *gts = ts + B, *scratch = gts + B;
    const uint8_t *reset = (const uint8_t *)p[Q_RESET];
    const real *h0 = (const real *)p[Q_H0], *states = (const real *)p[Q_STATES];
    const real *gstates = (const real *)p[Q_GSTATES];
    real *gx = (real *)p[Q_GX], *gh0 = (real *)p[Q_GH0], *gdt = (real *)p[Q_GDT];
    /* accumulator layout per layer: 4 weight blocks (H*K each), 4 biases, w_tau, A (H each) */
    double *la[64];
    {
        double *q = acc;
        for (int64_t l = 0; l < L; l++) { la[l] = q; q += 4 * ly[l].H * ly[l].K + 6 * ly[l].H; }
    }
    memset(g, 0, sizeof(work) * (size_t)(N * B));
    for (int64_t t = T - 1; t >= 0; t--) {
        if (gstates)
            for (int64_t b = 0; b < B; b++) {
                const real *gs = gstates + t * d[C_GS_ST] + b * d[C_GS_SB];
                for (int64_t j = 0; j < N; j++) g[j * B + b] += gs[j];
            }
        /* states before (hprev) and after (hnew) step t */
        for (int64_t b = 0; b < B; b++) {
            const real *sp = t > 0 ? states + (t - 1) * d[C_S_ST] + b * d[C_S_SB] : h0 + b * d[C_H_SB];
            const real *sn = states + t * d[C_S_ST] + b * d[C_S_SB];
            const int zeroed = reset && reset[t * d[C_R_ST] + b * d[C_R_SB]];
            for (int64_t j = 0; j < N; j++) { hprev[j * B + b] = zeroed ? 0 : sp[j]; hnew[j * B + b] = sn[j]; }
        }
        NCP_FN(load_times)(d, p, t, ts);
        memset(gts, 0, sizeof(work) * (size_t)B);
        memset(gprev, 0, sizeof(work) * (size_t)(N * B));
        for (int64_t l = L - 1; l >= 0; l--) {
            const NCP_FN(layer) *y = &ly[l];
            const int64_t H = y->H, K = y->K, in = K - H;
            NCP_FN(gather_z)(d, p, ly, l, t, hnew, hprev, z);
            NCP_FN(layer_forward)(d, y, z, ts, pre, scratch); /* for the pre-activations */
            work *f1 = pre, *f2 = pre + H * B, *ta = pre + 2 * H * B, *tb = pre + 3 * H * B;
            work *g1 = gpre, *g2 = gpre + H * B, *ga = gpre + 2 * H * B, *gb = gpre + 3 * H * B;
            double *a = la[l];
            double *a_tau = a + 4 * H * K + 4 * H, *a_A = a_tau + H;
            for (int64_t o = 0; o < H; o++) {
                const work *gh = g + (y->off + o) * B;
                if (mode == MODE_PURE) {
                    const work A = y->p[W_A][o], wraw = y->p[W_TAU][o], wt = fabs(wraw);
                    const work swt = (wraw > 0) - (wraw < 0);
                    double sA = 0, sT = 0;
                    for (int64_t b = 0; b < B; b++) {
                        const work f = f1[o * B + b], af = fabs(f), sf = (f > 0) - (f < 0);
                        const work e = exp(-ts[b] * (wt + af));
                        sA += gh[b] * (1 - e * f);
                        /* d/df [-A e(f) f] with de/df = -t sign(f) e */
                        g1[o * B + b] = gh[b] * (-A * e * (1 - ts[b] * f * sf));
                        sT += gh[b] * A * f * e * ts[b] * swt;
                        gts[b] += gh[b] * A * f * e * (wt + af);
                    }
                    a_A[o] += sA;
                    a_tau[o] += sT;
                } else {
                    for (int64_t b = 0; b < B; b++) {
                        const work pa = ta[o * B + b] * ts[b] + tb[o * B + b];
                        const work gg = NCP_FN(sigm)(pa);
                        const work t1 = tanh(f1[o * B + b]), t2 = tanh(f2[o * B + b]);
                        const work dh = gh[b];
                        work dg;
                        if (mode == MODE_NO_GATE) {
                            g1[o * B + b] = dh * (1 - t1 * t1);
                            dg = dh * t2;
                        } else {
                            g1[o * B + b] = dh * (1 - gg) * (1 - t1 * t1);
                            dg = dh * (t2 - t1);
                        }
                        g2[o * B + b] = dh * gg * (1 - t2 * t2);
                        const work dpa = dg * gg * (1 - gg);
                        ga[o * B + b] = dpa * ts[b];
                        gb[o * B + b] = dpa;
                        gts[b] += dpa * ta[o * B + b];
                    }
                }
            }
            memset(gz, 0, sizeof(work) * (size_t)(K * B));
            const real *mask = y->p[W_MASK];
            NCP_FN(head_back)(H, K, B, y->p[W_FF1], mask, z, g1, gz, a, a + 4 * H * K);
            if (mode != MODE_PURE) {
                NCP_FN(head_back)(H, K, B, y->p[W_FF2], mask, z, g2, gz, a + H * K, a + 4 * H * K + H);
                NCP_FN(head_back)(H, K, B, y->p[W_TA], gates_masked ? mask : NULL, z, ga, gz, a + 2 * H * K,
                                  a + 4 * H * K + 2 * H);
                NCP_FN(head_back)(H, K, B, y->p[W_TB], gates_masked ? mask : NULL, z, gb, gz, a + 3 * H * K,
                                  a + 4 * H * K + 3 * H);
            }
            /* split gz: the layer input (previous layer's new state, or the inputs) and the layer's old state */
            if (l > 0) {
                work *gin = g + ly[l - 1].off * B;
                for (int64_t i = 0; i < in * B; i++) gin[i] += gz[i];
            } else if (gx) {
                for (int64_t b = 0; b < B; b++)
                    for (int64_t i = 0; i < I; i++) gx[(t * B + b) * I + i] = (real)gz[i * B + b];
            }
            work *gp = gprev + y->off * B;
            for (int64_t i = 0; i < H * B; i++) gp[i] += gz[in * B + i];
        }
        if (gdt)
            for (int64_t b = 0; b < B; b++) gdt[t * B + b] = (real)gts[b];
        if (reset) /* the state was zeroed before step t: no gradient flows further back */
            for (int64_t b = 0; b < B; b++)
                if (reset[t * d[C_R_ST] + b * d[C_R_SB]])
                    for (int64_t j = 0; j < N; j++) gprev[j * B + b] = 0;
        memcpy(g, gprev, sizeof(work) * (size_t)(N * B));
    }
    if (gh0)
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < N; j++) gh0[b * N + j] = (real)g[j * B + b];
    void **gp = p + Q_LAYERS + L * W_COUNT;
    for (int64_t l = 0; l < L; l++) {
        const int64_t H = ly[l].H, K = ly[l].K;
        const double *a = la[l];
        real **gl = (real **)(gp + l * W_COUNT);
        const int idx_w[4] = {W_FF1, W_FF2, W_TA, W_TB}, idx_b[4] = {B_FF1, B_FF2, B_TA, B_TB};
        for (int h = 0; h < 4; h++) {
            if (gl[idx_w[h]]) for (int64_t i = 0; i < H * K; i++) gl[idx_w[h]][i] = (real)a[h * H * K + i];
            if (gl[idx_b[h]]) for (int64_t i = 0; i < H; i++) gl[idx_b[h]][i] = (real)a[4 * H * K + h * H + i];
        }
        if (gl[W_TAU]) for (int64_t i = 0; i < H; i++) gl[W_TAU][i] = (real)a[4 * H * K + 4 * H + i];
        if (gl[W_A]) for (int64_t i = 0; i < H; i++) gl[W_A][i] = (real)a[4 * H * K + 5 * H + i];
    }
    free(ws);
    free(acc);
    return NCP_OK;
}

#undef real
#undef work

#endif
