// Philox4x32-10 (Salmon et al., SC'11, "Parallel random numbers: as easy as 1, 2, 3") and
// Box-Muller, bit-identical to Sources/JEM/Random/Philox.swift. Included by other kernel files.
//
// Addressing: a stream of numbers is named by (seed, stream). Element i of it comes from the
// Philox block with counter (i/4 low, i/4 high, stream low, stream high) and key (seed low,
// seed high), lane i%4. Gaussians pair lanes (0,1) and (2,3) through Box-Muller.
#ifndef JEM_PHILOX_CL
#define JEM_PHILOX_CL

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

inline uint4 philox4x32_10(uint4 ctr, uint2 key) {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) { key.x += PHILOX_W0; key.y += PHILOX_W1; }
        uint lo0 = PHILOX_M0 * ctr.x, hi0 = mul_hi(PHILOX_M0, ctr.x);
        uint lo1 = PHILOX_M1 * ctr.z, hi1 = mul_hi(PHILOX_M1, ctr.z);
        ctr = (uint4)(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
    }
    return ctr;
}

// The block holding element `block*4 .. block*4+3` of stream (seed, stream).
inline uint4 philox_block(ulong seed, ulong stream, ulong block) {
    uint4 ctr = (uint4)((uint)block, (uint)(block >> 32), (uint)stream, (uint)(stream >> 32));
    uint2 key = (uint2)((uint)seed, (uint)(seed >> 32));
    return philox4x32_10(ctr, key);
}

// [0, 1) with 24 random bits: exactly representable, identical on every device.
inline float philox_uniform01(uint bits) { return (float)(bits >> 8) * 5.9604644775390625e-8f; }

// (0, 1]: safe for log().
inline float philox_uniform01_open0(uint bits) { return (float)((bits >> 8) + 1u) * 5.9604644775390625e-8f; }

// Two standard normals from two 32-bit words.
inline float2 philox_box_muller(uint a, uint b) {
    float radius = sqrt(-2.0f * log(philox_uniform01_open0(a)));
    float angle = 6.283185307179586f * philox_uniform01(b);
    return (float2)(radius * cos(angle), radius * sin(angle));
}

// Four standard normals: elements block*4 .. block*4+3 of the stream.
inline float4 philox_normal4(ulong seed, ulong stream, ulong block) {
    uint4 r = philox_block(seed, stream, block);
    float2 a = philox_box_muller(r.x, r.y), b = philox_box_muller(r.z, r.w);
    return (float4)(a.x, a.y, b.x, b.y);
}

// Element i of the standard-normal stream.
inline float philox_normal_at(ulong seed, ulong stream, ulong i) {
    float4 n = philox_normal4(seed, stream, i >> 2);
    uint lane = (uint)(i & 3);
    return lane == 0 ? n.x : lane == 1 ? n.y : lane == 2 ? n.z : n.w;
}

// Element i of the uniform [0,1) stream.
inline float philox_uniform_at(ulong seed, ulong stream, ulong i) {
    uint4 r = philox_block(seed, stream, i >> 2);
    uint lane = (uint)(i & 3);
    uint bits = lane == 0 ? r.x : lane == 1 ? r.y : lane == 2 ? r.z : r.w;
    return philox_uniform01(bits);
}

// Raw words, for the known-answer test and the CPU/OpenCL bit-equality test.
__kernel void philox_raw(__global uint *out, uint4 ctr, uint2 key, uint count) {
    uint i = get_global_id(0);
    if (i >= count) return;
    uint4 c = ctr; c.x += i;   // block i: counter word 0 advanced by i (test only)
    uint4 r = philox4x32_10(c, key);
    vstore4(r, i, out);
}

#endif
