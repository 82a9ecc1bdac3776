// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "jem-gpu",
    products: [
        .executable(name: "jem-gpu", targets: ["jem-gpu"]),
        .executable(name: "jem-bench", targets: ["jem-bench"]),
        .library(name: "JEM", targets: ["JEM", "JEMBackend", "JEMSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries, found through pkg-config.
        .systemLibrary(name: "COpenCL", pkgConfig: "OpenCL",
                       providers: [.apt(["ocl-icd-opencl-dev", "opencl-headers"])]),
        .systemLibrary(name: "CCLBlast", pkgConfig: "clblast", providers: [.apt(["libclblast-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Open MPI for data-parallel training (`mpirun -np N jem-gpu train`): a C shim that loads
        // libmpi.so.40 only when mpirun started the process and exports its handle macros
        // (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) as functions. Not a pkg-config system library on
        // purpose: that would link libmpi into every binary and load it at every start.
        .target(name: "CJEMMPI", linkerSettings: [.linkedLibrary("dl")]),

        // Kernels/*.cl embedded as Swift strings, so the binary needs no Kernels/ folder at run time.
        .executableTarget(name: "kernel-embedder"),
        .plugin(name: "KernelEmbedder", capability: .buildTool(), dependencies: ["kernel-embedder"]),
        .target(name: "CLKernels", path: "Kernels", plugins: ["KernelEmbedder"]),

        // Vectorised C kernels of the CPU backend (Winograd transforms, pointwise loops), each
        // compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time.
        .target(name: "CJEMKernels"),

        // File-level utilities every layer uses: atomic writes, MD5, test crash points.
        .target(name: "JEMSupport"),

        // The compute layer: the Backend protocol, device buffers, Philox, the CPU reference
        // backend and the OpenCL backend. The only target that links OpenCL, CLBlast and BLAS.
        .target(name: "JEMBackend", dependencies: ["JEMSupport", "COpenCL", "CCLBlast", "CBLAS", "CLKernels", "CJEMKernels"]),

        // Everything above the backend: NN, Training, Data, Evaluation, Attack, Report, IO.
        // It sees devices only through the Backend protocol.
        .target(name: "JEM", dependencies: ["JEMSupport", "JEMBackend", "CZlib"]),
        // The MPI communicator behind JEM's `Communicator` protocol (the JEM library has no MPI calls).
        .target(name: "JEMDistributed", dependencies: ["JEM", "JEMBackend", "CJEMMPI"]),
        .executableTarget(name: "jem-gpu", dependencies: [
            "JEM", "JEMBackend", "JEMSupport", "JEMDistributed", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "jem-bench", dependencies: [
            "JEM", "JEMBackend", "JEMDistributed", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Benchmarks", exclude: ["README.md", "torch"]),
        .testTarget(name: "JEMTests", dependencies: ["JEM", "JEMBackend", "JEMSupport", "CLKernels"]),
    ]
)
