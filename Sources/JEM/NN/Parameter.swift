import JEMBackend
/// One learnable tensor: its official PyTorch state_dict name and shape, its value and gradient
/// on the backend.
public final class Parameter {
    /// The name in the official JEM `CCF` state_dict, e.g. `f.layer1.0.conv1.weight`.
    public let name: String
    public let shape: [Int]
    public let value: DeviceBuffer
    public let gradient: DeviceBuffer
    /// False for the official model's unused heads (`energy_output`, `f.linear`): kept so that
    /// checkpoints load into the official code, never updated.
    public let trainable: Bool

    public var count: Int { shape.reduce(1, *) }

    init(name: String, shape: [Int], trainable: Bool = true, backend: any Backend) throws {
        self.name = name
        self.shape = shape
        self.trainable = trainable
        let count = shape.reduce(1, *)
        value = try backend.makeBuffer(count: count)
        gradient = try backend.makeBuffer(count: count)
        backend.fill(gradient, value: 0, offset: 0, count: count)
    }

    /// PyTorch's default Conv2d/Linear initialisation, which the official JEM code really uses:
    /// kaiming_uniform(a=√5) gives U(±1/√fan_in) for weights, and biases are U(±1/√fan_in) too.
    /// Drawn from Philox (seed, stream) so that every backend gets the same weights.
    func initializeUniform(fanIn: Int, seed: UInt64, stream: UInt64, backend: any Backend) {
        let bound = 1 / Float(fanIn).squareRoot()
        backend.fillUniform(value, count: count, low: -bound, high: bound, seed: seed, stream: stream)
    }
}
