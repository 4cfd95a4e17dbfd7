//! MD5 of many independent messages at once: each 32-bit lane of a SIMD register carries a
//! different message, so one core hashes several files in about the time one takes. MD5 cannot
//! be sped up within a message (every step depends on the one before), but a directory of many
//! files gives plenty of independent messages.

use super::md5_bytes;

/// The digests of `msgs`, in order.
pub fn md5_many(msgs: &[&[u8]]) -> Vec<[u8; 16]> {
    #[cfg(target_arch = "x86_64")]
    {
        if msgs.len() > 1 && std::arch::is_x86_feature_detected!("avx2") {
            let mut out = vec![[0u8; 16]; msgs.len()];
            // SAFETY: the CPU supports AVX2, checked just above.
            run::<8>(msgs, &mut out, |state, blocks| unsafe {
                x86::compress_avx2(state, blocks)
            });
            return out;
        }
    }
    msgs.iter().map(|m| md5_bytes(m)).collect()
}

const IV: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// One message in a lane: which one, and where it stands.
struct Lane {
    msg: usize,
    block: usize,
    blocks: usize,
    /// Where the last partial block plus the padding start in the message.
    full: usize,
    /// The message's last partial block and its padding (one or two blocks).
    tail: [u8; 128],
}

impl Lane {
    fn new(msg: usize, data: &[u8]) -> Lane {
        let len = data.len();
        let full = len / 64 * 64;
        let padded = (len + 8) / 64 * 64 + 64;
        let mut tail = [0u8; 128];
        let rest = &data[full..];
        tail[..rest.len()].copy_from_slice(rest);
        tail[rest.len()] = 0x80;
        let end = padded - full;
        tail[end - 8..end].copy_from_slice(&((len as u64).wrapping_mul(8)).to_le_bytes());
        Lane {
            msg,
            block: 0,
            blocks: padded / 64,
            full,
            tail,
        }
    }

    fn block_ptr(&self, data: &[u8]) -> *const u8 {
        let at = self.block * 64;
        if at < self.full {
            data[at..at + 64].as_ptr()
        } else {
            self.tail[at - self.full..at - self.full + 64].as_ptr()
        }
    }
}

/// Feeds the messages through `N` lanes, refilling a lane as soon as its message is done.
fn run<const N: usize>(
    msgs: &[&[u8]],
    out: &mut [[u8; 16]],
    compress: impl Fn(&mut [[u32; N]; 4], &[*const u8; N]),
) {
    static ZERO: [u8; 64] = [0; 64];
    let mut state = [[0u32; N]; 4];
    let mut lanes: Vec<Option<Lane>> = (0..N).map(|_| None).collect();
    let mut next = 0;
    let mut fill = |lane: usize, state: &mut [[u32; N]; 4], lanes: &mut Vec<Option<Lane>>| {
        if next < msgs.len() {
            for (w, iv) in IV.iter().enumerate() {
                state[w][lane] = *iv;
            }
            lanes[lane] = Some(Lane::new(next, msgs[next]));
            next += 1;
        } else {
            lanes[lane] = None;
        }
    };
    for lane in 0..N {
        fill(lane, &mut state, &mut lanes);
    }
    let mut blocks = [ZERO.as_ptr(); N];
    while lanes.iter().any(Option::is_some) {
        for (ptr, lane) in blocks.iter_mut().zip(&lanes) {
            *ptr = match lane {
                Some(l) => l.block_ptr(msgs[l.msg]),
                None => ZERO.as_ptr(),
            };
        }
        compress(&mut state, &blocks);
        for i in 0..N {
            let done = match &mut lanes[i] {
                Some(l) => {
                    l.block += 1;
                    (l.block == l.blocks).then_some(l.msg)
                }
                None => None,
            };
            if let Some(msg) = done {
                for w in 0..4 {
                    out[msg][w * 4..w * 4 + 4].copy_from_slice(&state[w][i].to_le_bytes());
                }
                fill(i, &mut state, &mut lanes);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// One MD5 block for each of 8 lanes; `state` holds a, b, c, d by lane.
    ///
    /// # Safety
    /// The CPU must support AVX2, and every pointer must address 64 readable bytes.
    #[target_feature(enable = "avx2")]
    pub unsafe fn compress_avx2(state: &mut [[u32; 8]; 4], blocks: &[*const u8; 8]) {
        let word = |p: *const u8, j: usize| -> i32 {
            // SAFETY: the caller guarantees 64 readable bytes behind each pointer.
            unsafe { (p.add(j * 4) as *const i32).read_unaligned() }
        };
        let mut m = [_mm256_setzero_si256(); 16];
        for (j, mj) in m.iter_mut().enumerate() {
            *mj = _mm256_set_epi32(
                word(blocks[7], j),
                word(blocks[6], j),
                word(blocks[5], j),
                word(blocks[4], j),
                word(blocks[3], j),
                word(blocks[2], j),
                word(blocks[1], j),
                word(blocks[0], j),
            );
        }
        let (a0, b0, c0, d0) = (
            _mm256_loadu_si256(state[0].as_ptr() as *const __m256i),
            _mm256_loadu_si256(state[1].as_ptr() as *const __m256i),
            _mm256_loadu_si256(state[2].as_ptr() as *const __m256i),
            _mm256_loadu_si256(state[3].as_ptr() as *const __m256i),
        );
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        let ones = _mm256_set1_epi32(-1);
        macro_rules! f {
            ($b:expr, $c:expr, $d:expr) => {
                _mm256_xor_si256($d, _mm256_and_si256($b, _mm256_xor_si256($c, $d)))
            };
        }
        macro_rules! g {
            ($b:expr, $c:expr, $d:expr) => {
                _mm256_xor_si256($c, _mm256_and_si256($d, _mm256_xor_si256($b, $c)))
            };
        }
        macro_rules! h {
            ($b:expr, $c:expr, $d:expr) => {
                _mm256_xor_si256(_mm256_xor_si256($b, $c), $d)
            };
        }
        macro_rules! i {
            ($b:expr, $c:expr, $d:expr) => {
                _mm256_xor_si256($c, _mm256_or_si256($b, _mm256_xor_si256($d, ones)))
            };
        }
        macro_rules! step {
            ($fun:ident, $a:ident, $b:ident, $c:ident, $d:ident, $m:expr, $k:expr, $s:literal) => {
                let t = _mm256_add_epi32(
                    _mm256_add_epi32($a, $fun!($b, $c, $d)),
                    _mm256_add_epi32($m, _mm256_set1_epi32($k as u32 as i32)),
                );
                let r = _mm256_or_si256(
                    _mm256_slli_epi32::<$s>(t),
                    _mm256_srli_epi32::<{ 32 - $s }>(t),
                );
                $a = _mm256_add_epi32($b, r);
            };
        }
        step!(f, a, b, c, d, m[0], 0xd76aa478, 7);
        step!(f, d, a, b, c, m[1], 0xe8c7b756, 12);
        step!(f, c, d, a, b, m[2], 0x242070db, 17);
        step!(f, b, c, d, a, m[3], 0xc1bdceee, 22);
        step!(f, a, b, c, d, m[4], 0xf57c0faf, 7);
        step!(f, d, a, b, c, m[5], 0x4787c62a, 12);
        step!(f, c, d, a, b, m[6], 0xa8304613, 17);
        step!(f, b, c, d, a, m[7], 0xfd469501, 22);
        step!(f, a, b, c, d, m[8], 0x698098d8, 7);
        step!(f, d, a, b, c, m[9], 0x8b44f7af, 12);
        step!(f, c, d, a, b, m[10], 0xffff5bb1, 17);
        step!(f, b, c, d, a, m[11], 0x895cd7be, 22);
        step!(f, a, b, c, d, m[12], 0x6b901122, 7);
        step!(f, d, a, b, c, m[13], 0xfd987193, 12);
        step!(f, c, d, a, b, m[14], 0xa679438e, 17);
        step!(f, b, c, d, a, m[15], 0x49b40821, 22);
        step!(g, a, b, c, d, m[1], 0xf61e2562, 5);
        step!(g, d, a, b, c, m[6], 0xc040b340, 9);
        step!(g, c, d, a, b, m[11], 0x265e5a51, 14);
        step!(g, b, c, d, a, m[0], 0xe9b6c7aa, 20);
        step!(g, a, b, c, d, m[5], 0xd62f105d, 5);
        step!(g, d, a, b, c, m[10], 0x02441453, 9);
        step!(g, c, d, a, b, m[15], 0xd8a1e681, 14);
        step!(g, b, c, d, a, m[4], 0xe7d3fbc8, 20);
        step!(g, a, b, c, d, m[9], 0x21e1cde6, 5);
        step!(g, d, a, b, c, m[14], 0xc33707d6, 9);
        step!(g, c, d, a, b, m[3], 0xf4d50d87, 14);
        step!(g, b, c, d, a, m[8], 0x455a14ed, 20);
        step!(g, a, b, c, d, m[13], 0xa9e3e905, 5);
        step!(g, d, a, b, c, m[2], 0xfcefa3f8, 9);
        step!(g, c, d, a, b, m[7], 0x676f02d9, 14);
        step!(g, b, c, d, a, m[12], 0x8d2a4c8a, 20);
        step!(h, a, b, c, d, m[5], 0xfffa3942, 4);
        step!(h, d, a, b, c, m[8], 0x8771f681, 11);
        step!(h, c, d, a, b, m[11], 0x6d9d6122, 16);
        step!(h, b, c, d, a, m[14], 0xfde5380c, 23);
        step!(h, a, b, c, d, m[1], 0xa4beea44, 4);
        step!(h, d, a, b, c, m[4], 0x4bdecfa9, 11);
        step!(h, c, d, a, b, m[7], 0xf6bb4b60, 16);
        step!(h, b, c, d, a, m[10], 0xbebfbc70, 23);
        step!(h, a, b, c, d, m[13], 0x289b7ec6, 4);
        step!(h, d, a, b, c, m[0], 0xeaa127fa, 11);
        step!(h, c, d, a, b, m[3], 0xd4ef3085, 16);
        step!(h, b, c, d, a, m[6], 0x04881d05, 23);
        step!(h, a, b, c, d, m[9], 0xd9d4d039, 4);
        step!(h, d, a, b, c, m[12], 0xe6db99e5, 11);
        step!(h, c, d, a, b, m[15], 0x1fa27cf8, 16);
        step!(h, b, c, d, a, m[2], 0xc4ac5665, 23);
        step!(i, a, b, c, d, m[0], 0xf4292244, 6);
        step!(i, d, a, b, c, m[7], 0x432aff97, 10);
        step!(i, c, d, a, b, m[14], 0xab9423a7, 15);
        step!(i, b, c, d, a, m[5], 0xfc93a039, 21);
        step!(i, a, b, c, d, m[12], 0x655b59c3, 6);
        step!(i, d, a, b, c, m[3], 0x8f0ccc92, 10);
        step!(i, c, d, a, b, m[10], 0xffeff47d, 15);
        step!(i, b, c, d, a, m[1], 0x85845dd1, 21);
        step!(i, a, b, c, d, m[8], 0x6fa87e4f, 6);
        step!(i, d, a, b, c, m[15], 0xfe2ce6e0, 10);
        step!(i, c, d, a, b, m[6], 0xa3014314, 15);
        step!(i, b, c, d, a, m[13], 0x4e0811a1, 21);
        step!(i, a, b, c, d, m[4], 0xf7537e82, 6);
        step!(i, d, a, b, c, m[11], 0xbd3af235, 10);
        step!(i, c, d, a, b, m[2], 0x2ad7d2bb, 15);
        step!(i, b, c, d, a, m[9], 0xeb86d391, 21);
        for (w, v) in state.iter_mut().zip([
            _mm256_add_epi32(a, a0),
            _mm256_add_epi32(b, b0),
            _mm256_add_epi32(c, c0),
            _mm256_add_epi32(d, d0),
        ]) {
            _mm256_storeu_si256(w.as_mut_ptr() as *mut __m256i, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_md5_for_every_length_around_the_block_edges() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let msgs: Vec<&[u8]> = (0..300).map(|n| &data[n..n + (n * 13) % 200]).collect();
        let mut lens: Vec<&[u8]> = (0..=200).map(|n| &data[..n]).collect();
        lens.extend(msgs);
        lens.push(&data);
        let got = md5_many(&lens);
        for (m, d) in lens.iter().zip(&got) {
            assert_eq!(*d, md5_bytes(m), "length {}", m.len());
        }
    }

    #[test]
    fn fewer_messages_than_lanes() {
        for n in 0..10 {
            let msgs: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; i * 100]).collect();
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            let want: Vec<[u8; 16]> = refs.iter().map(|m| md5_bytes(m)).collect();
            assert_eq!(md5_many(&refs), want);
        }
    }
}
