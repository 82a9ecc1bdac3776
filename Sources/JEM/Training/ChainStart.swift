import JEMBackend

/// Where SGLD chains start: U(-1, 1) as in the official JEM code, the per-class Gaussians of
/// JEM++'s informative initialisation, or a mix of the two (`--buffer-init mixed`), each start
/// independently from the Gaussians with probability `informativeShare`. The replay buffer draws
/// its rows and restarts this way during training; the run's sample grids, `jem-gpu sample` and
/// `jem-gpu sample-quality` draw their fresh chains the same way.
public struct ChainStart: Sendable {
    public let gaussians: InformativeInit?
    /// The probability that a start comes from `gaussians` (0 without them).
    public let informativeShare: Float

    public static let uniform = ChainStart(gaussians: nil)

    public init(gaussians: InformativeInit?, informativeShare: Float = 1) {
        self.gaussians = gaussians
        self.informativeShare = gaussians == nil ? 0 : min(max(informativeShare, 0), 1)
    }

    /// The start a run with these settings uses; `gaussians` is needed unless `bufferInit` is uniform.
    public init(_ bufferInit: BufferInit, mixedShare: Float, gaussians: InformativeInit?) {
        self.init(gaussians: bufferInit == .uniform ? nil : gaussians,
                  informativeShare: bufferInit.informativeShare(mixed: mixedShare))
    }

    /// "uniform", "informative", or "mixed" with the share (e.g. "mixed 0.2"), as reports show it.
    public var name: String {
        if gaussians == nil || informativeShare <= 0 { return "uniform" }
        return informativeShare >= 1 ? "informative" : "mixed \(informativeShare)"
    }

    /// Whether start `row` comes from the Gaussians (`coin`: the draws that decide it).
    func fromGaussians(row: Int, coin: HostRandom) -> Bool {
        informativeShare >= 1 || (informativeShare > 0 && coin.uniform(row) < informativeShare)
    }

    /// Streams of one set of draws: U(-1,1) pixels, Gaussian draws, and the coins between them.
    public struct Streams {
        public var uniform: UInt64, gaussian: UInt64, coin: UInt64
        public init(uniform: UInt64, gaussian: UInt64, coin: UInt64) {
            self.uniform = uniform
            self.gaussian = gaussian
            self.coin = coin
        }
    }

    /// One start of `size` floats per entry of `classes` (a Gaussian start from class c mod the
    /// Gaussians' class count). Row r is a pure function of (seed, streams, r, its class): the
    /// U(-1,1) pixels of row r are elements r*size ..< (r+1)*size of the uniform stream.
    public func draw(classes: [Int], size: Int, seed: UInt64, streams: Streams) -> [Float] {
        let uniform = HostRandom(seed: seed, stream: streams.uniform)
        let coin = HostRandom(seed: seed, stream: streams.coin)
        var out = [Float](repeating: 0, count: classes.count * size)
        for (r, c) in classes.enumerated() {
            if let gaussians, fromGaussians(row: r, coin: coin) {
                let image = gaussians.sample(classes: [c % gaussians.classCount], seed: seed, stream: streams.gaussian,
                                             firstRow: r)
                out.replaceSubrange((r * size)..<((r + 1) * size), with: image)
            } else {
                for j in 0..<size { out[r * size + j] = 2 * uniform.uniform(r * size + j) - 1 }
            }
        }
        return out
    }
}
