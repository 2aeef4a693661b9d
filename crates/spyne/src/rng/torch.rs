//! PyTorch's CPU random stream, reproduced draw for draw.
//!
//! `torch.manual_seed(s)` seeds a Mersenne Twister (MT19937) with the low 32 bits of `s`;
//! `nn.Linear` then draws its weights and bias with `Tensor.uniform_`, and
//! `torch.randperm(n, generator=torch.Generator().manual_seed(s))` shuffles with a forward
//! Fisher–Yates on 32-bit draws. [`TorchRng`] does the same arithmetic, so spyne's `--seed s`
//! starts from the very weights and batch order that snntorch's tutorial starts from with
//! `torch.manual_seed(s)` — a run can be compared with its PyTorch twin, not just with its
//! distribution.

use serde::{Deserialize, Serialize};

const N: usize = 624;
const M: usize = 397;

/// MT19937 as `at::mt19937`, with PyTorch's float and permutation transforms on top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TorchRng {
    state: Vec<u32>,
    next: usize,
}

impl TorchRng {
    /// The generator after `torch.manual_seed(seed)` (PyTorch keeps the low 32 bits).
    pub fn new(seed: u64) -> Self {
        let mut state = vec![0u32; N];
        state[0] = seed as u32;
        for j in 1..N {
            let prev = state[j - 1];
            state[j] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(j as u32);
        }
        TorchRng { state, next: N }
    }

    fn twist(&mut self) {
        let s = &mut self.state;
        for k in 0..N {
            let y = (s[k] & 0x8000_0000) | (s[(k + 1) % N] & 0x7fff_ffff);
            let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
            s[k] = s[(k + M) % N] ^ (y >> 1) ^ mag;
        }
        self.next = 0;
    }

    /// The next 32-bit draw (`generator->random()`).
    pub fn next_u32(&mut self) -> u32 {
        if self.next >= N {
            self.twist();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// One `Tensor.uniform_(from, to)` element of an `f32` tensor: 24 random bits scaled to
    /// `[0, 1)`, then `x·(to − from) + from` as one fused multiply-add (PyTorch's vectorised
    /// CPU kernels are compiled with FMA contraction; this matches them bit for bit).
    pub fn uniform_f32(&mut self, from: f32, to: f32) -> f32 {
        let x = (self.next_u32() & 0x00ff_ffff) as f32 * (1.0 / (1u32 << 24) as f32);
        x.mul_add(to - from, from)
    }

    /// `torch.randperm(n, generator)` for `n` below 2³²/20 (PyTorch's CPU algorithm: a
    /// forward Fisher–Yates where step `i` swaps in `i + random() % (n − i)`).
    pub fn randperm(&mut self, n: usize) -> Vec<usize> {
        assert!(
            (n as u64) < u64::from(u32::MAX) / 20,
            "randperm: n = {n} is past the range PyTorch's small-n algorithm covers"
        );
        let mut p: Vec<usize> = (0..n).collect();
        for i in 0..n.saturating_sub(1) {
            let z = self.next_u32() as usize % (n - i);
            p.swap(i, i + z);
        }
        p
    }
}

/// `nn.Linear`'s bounds for fan-in `d_in`, computed in `f64` as PyTorch does and then
/// rounded: (weight bound of `kaiming_uniform_(a = √5)`, bias bound `1/√fan_in`).
pub fn linear_bounds(d_in: usize) -> (f32, f32) {
    let fan_in = d_in as f64;
    let gain = (2.0f64 / (1.0 + 5.0)).sqrt();
    let std = gain / fan_in.sqrt();
    ((3.0f64.sqrt() * std) as f32, (1.0 / fan_in.sqrt()) as f32)
}
