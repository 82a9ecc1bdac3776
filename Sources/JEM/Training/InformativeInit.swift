import JEMBackend
import JEMSupport

/// Where SGLD chains start: U(-1, 1) as in the official JEM code, JEM++'s "informative
/// initialisation" (Yang & Ji, ICCV 2021), one Gaussian per class fitted to the training images,
/// or a mix of the two (each start independently from the Gaussians with probability
/// `TrainingConfig.informativeShare`, else from U(-1, 1)).
public enum BufferInit: String, Sendable, Codable, CaseIterable {
    case uniform
    case informative
    case mixed

    /// The share of starts drawn from the class Gaussians.
    public func informativeShare(mixed share: Float) -> Float {
        switch self {
        case .uniform: return 0
        case .informative: return 1
        case .mixed: return share
        }
    }
}

/// JEM++'s informative initialisation: class c's chains start from N(mu_c, Sigma_c + 1e-4 I),
/// clamped to [-1, 1], where mu_c and Sigma_c are the mean and sample covariance of (up to
/// `maxPerClass` of) the class's training images. Short chains then begin near the data, so on
/// a CPU budget the sample grids show recognisable classes instead of noise.
///
/// No D x D covariance or Cholesky factor is formed: with A_c = (X_c - mu_c) / sqrt(n_c - 1)
/// (n_c rows of D pixels), x = mu_c + A_c^T z with z ~ N(0, I_{n_c}) has covariance exactly
/// A_c^T A_c = Sigma_c, and costs n_c * D multiply-adds per image. The 1e-4 I term is an extra
/// N(0, 0.01^2) per pixel. Without labels there is one Gaussian for the whole set.
public final class InformativeInit: @unchecked Sendable {
    public let classCount: Int
    public let rowSize: Int
    /// Images used per class (n_c).
    public let countPerClass: [Int]
    let means: [[Float]]
    let factors: [[Float]]
    let stride: Int
    public static let jitterStd: Float = 0.01

    /// Fits the Gaussians to `images[indices]`. Which images a class uses (when it has more than
    /// `maxPerClass`) is a Philox permutation of `seed`, so a resumed run refits the same ones.
    public init(images: ImageSet, indices: [Int], classCount: Int, maxPerClass: Int = 1000, seed: UInt64) throws {
        let d = images.imageSize
        let labels = images.labels
        let k = labels == nil ? 1 : classCount
        var members = [[Int]](repeating: [], count: k)
        let order = HostRandom(seed: seed, stream: RandomStream.informativeInit.id(1 << 55)).permutation(indices.count)
        for position in order {
            let i = indices[position]
            let c = labels.map { Int($0[i]) } ?? 0
            if c >= 0 && c < k && members[c].count < maxPerClass { members[c].append(i) }
        }
        if let empty = members.firstIndex(where: { $0.count < 2 }) {
            throw IOError("--buffer-init informative: class \(empty) has \(members[empty].count) training images; "
                          + "at least 2 per class are needed to fit its Gaussian")
        }
        var means = [[Float]](), factors = [[Float]]()
        for rows in members {
            let n = rows.count
            var x = [Float](repeating: 0, count: n * d)
            x.withUnsafeMutableBufferPointer { images.images(rows, into: $0.baseAddress!) }
            var mean = [Double](repeating: 0, count: d)
            for r in 0..<n { for j in 0..<d { mean[j] += Double(x[r * d + j]) } }
            for j in 0..<d { mean[j] /= Double(n) }
            let scale = 1 / Double(n - 1).squareRoot()
            for r in 0..<n { for j in 0..<d { x[r * d + j] = Float((Double(x[r * d + j]) - mean[j]) * scale) } }
            means.append(mean.map { Float($0) })
            factors.append(x)
        }
        self.classCount = k
        self.rowSize = d
        self.means = means
        self.factors = factors
        self.countPerClass = members.map(\.count)
        self.stride = (countPerClass.max() ?? 0) + d
    }

    /// The Gaussians a run with `config` fits: to the labelled part of the same training split
    /// (the validation images held out), with the run's seed. `jem-gpu sample` refits them from a
    /// checkpoint's config this way.
    public static func fit(config: TrainingConfig, dataset: Dataset) throws -> InformativeInit {
        let dataset = dataset.limitingTrain(to: config.trainLimit)
        let split = DataSplit(dataset.train, validCount: config.validCount, labelsPerClass: config.labelsPerClass,
                              classCount: dataset.classCount, seed: config.seed)
        return try InformativeInit(images: split.train, indices: split.labeledIndices, classCount: dataset.classCount,
                                   seed: config.seed)
    }

    /// Draws one image per entry of `classes` (each in 0..<classCount) into `out` (rows of
    /// `rowSize`). Row r uses elements (firstRow + r) * stride ..< (firstRow + r + 1) * stride of
    /// the normal stream, so each image is a pure function of (seed, stream, its row, its class).
    public func sample(classes: [Int], seed: UInt64, stream: UInt64, firstRow: Int = 0,
                       into out: UnsafeMutablePointer<Float>) {
        let d = rowSize
        var z = [Float](repeating: 0, count: stride)
        for (r, c) in classes.enumerated() {
            precondition(c >= 0 && c < classCount, "class \(c) outside 0..<\(classCount)")
            let n = countPerClass[c]
            let x = out + r * d
            z.withUnsafeMutableBufferPointer { zp in
                Philox.fillNormal(zp.baseAddress!, count: stride, start: (firstRow + r) * stride, seed: seed,
                                  stream: stream)
                for j in 0..<d { x[j] = means[c][j] + Self.jitterStd * zp[n + j] }
                factors[c].withUnsafeBufferPointer { a in
                    HostBLAS.addTransposedProduct(a.baseAddress!, rows: n, cols: d, zp.baseAddress!, into: x)
                }
            }
            for j in 0..<d { x[j] = min(max(x[j], -1), 1) }
        }
    }

    /// `sample` into a new array.
    public func sample(classes: [Int], seed: UInt64, stream: UInt64, firstRow: Int = 0) -> [Float] {
        var out = [Float](repeating: 0, count: classes.count * rowSize)
        out.withUnsafeMutableBufferPointer {
            sample(classes: classes, seed: seed, stream: stream, firstRow: firstRow, into: $0.baseAddress!)
        }
        return out
    }
}
