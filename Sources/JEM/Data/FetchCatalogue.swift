import Foundation
import JEMBackend
import JEMSupport

/// `jem-gpu fetch`: downloads the official archives of the datasets `jem-gpu` reads, checks their published MD5
/// checksums, and leaves a folder that `--data DIR` loads directly:
///
/// - `cifar10`: `cifar-10-binary.tar.gz`, unpacked to `DIR/cifar-10-batches-bin/`
/// - `cifar100`: `cifar-100-binary.tar.gz`, unpacked to `DIR/cifar-100-binary/`
/// - `mnist`, `fashion-mnist`: the four `*-ubyte.gz` files in `DIR/` (read gzipped)
/// - `svhn`: `train_32x32.mat` and `test_32x32.mat` in `DIR/`
///
/// Every file is streamed to a temporary file in `DIR` (hashed while it arrives), checked, then
/// renamed into place: a failed or interrupted download never leaves a file under the final name.
/// Files already present with the right checksum are not downloaded again. Where a system package
/// installs the same files (Debian's `dataset-fashion-mnist`), they are copied from there instead,
/// with no network, and checked by the MD5 of their decompressed content (`LocalCopy`).
public enum Fetch {
    /// One file of a dataset: its name (on the server and on disk) and published MD5.
    public struct RemoteFile: Sendable, Equatable {
        public let name: String
        public let md5: String

        public init(name: String, md5: String) {
            self.name = name
            self.md5 = md5
        }
    }

    /// A dataset as published: where its files live and what to do with them once downloaded.
    public struct Source: Sendable, Equatable {
        /// The name `jem-gpu fetch` takes (`cifar10`, ...).
        public let name: String
        public let title: String
        /// Files are fetched from `baseURL + "/" + file.name`.
        public let baseURL: String
        public let files: [RemoteFile]
        /// For an archive (the CIFAR tarballs): the folder inside it that is unpacked into DIR.
        public let unpackFolder: String?
        /// Where a system package installs the same files, used instead of the network.
        public var localCopy: LocalCopy? = nil
    }

    /// The files of a dataset as a system package installs them. Repackaging recompresses the
    /// files (Debian's gzip headers differ from the publisher's), so the published archive MD5s do
    /// not apply; each file is checked by the MD5 of its decompressed content instead.
    public struct LocalCopy: Sendable, Equatable {
        /// The package that installs the files (named in messages).
        public var package: String
        /// The folder holding them under the same names as `Source.files`.
        public var folder: String
        /// MD5 of each file's content after gunzipping, by file name.
        public var contentMD5: [String: String]
        /// SHA-256 of the same content, recorded for reference (what `sha256sum` of the gunzipped
        /// file prints); the check itself uses `contentMD5`.
        public var contentSHA256: [String: String]
    }

    /// The datasets `jem-gpu fetch` knows, with the URLs and MD5 checksums their publishers
    /// give (CIFAR: https://www.cs.toronto.edu/~kriz/cifar.html; MNIST, Fashion-MNIST and SVHN:
    /// the mirrors and checksums of torchvision's `datasets/mnist.py` and `datasets/svhn.py`).
    public static let sources: [Source] = [
        Source(name: "cifar10", title: "CIFAR-10 (binary version)", baseURL: "https://www.cs.toronto.edu/~kriz",
               files: [RemoteFile(name: "cifar-10-binary.tar.gz", md5: "c32a1d4ab5d03f1284b67883e8d87530")],
               unpackFolder: "cifar-10-batches-bin"),
        Source(name: "cifar100", title: "CIFAR-100 (binary version)", baseURL: "https://www.cs.toronto.edu/~kriz",
               files: [RemoteFile(name: "cifar-100-binary.tar.gz", md5: "03b5dce01913d631647c71ecec9e9cb8")],
               unpackFolder: "cifar-100-binary"),
        Source(name: "mnist", title: "MNIST", baseURL: "https://ossci-datasets.s3.amazonaws.com/mnist",
               files: [RemoteFile(name: "train-images-idx3-ubyte.gz", md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                       RemoteFile(name: "train-labels-idx1-ubyte.gz", md5: "d53e105ee54ea40749a09fcbcd1e9432"),
                       RemoteFile(name: "t10k-images-idx3-ubyte.gz", md5: "9fb629c4189551a2d022fa330f9573f3"),
                       RemoteFile(name: "t10k-labels-idx1-ubyte.gz", md5: "ec29112dd5afa0611ce80d1b7f02629c")],
               unpackFolder: nil),
        Source(name: "fashion-mnist", title: "Fashion-MNIST",
               baseURL: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
               files: [RemoteFile(name: "train-images-idx3-ubyte.gz", md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                       RemoteFile(name: "train-labels-idx1-ubyte.gz", md5: "25c81989df183df01b3e8a0aad5dffbe"),
                       RemoteFile(name: "t10k-images-idx3-ubyte.gz", md5: "bef4ecab320f06d8554ea6380940ec79"),
                       RemoteFile(name: "t10k-labels-idx1-ubyte.gz", md5: "bb300cfdad3c16e7a12a480ee83cd310")],
               unpackFolder: nil, localCopy: fashionMNISTDebian),
        Source(name: "svhn", title: "SVHN (cropped digits)", baseURL: "http://ufldl.stanford.edu/housenumbers",
               files: [RemoteFile(name: "train_32x32.mat", md5: "e26dedcc434d2e4c54c9b2d4a06d8373"),
                       RemoteFile(name: "test_32x32.mat", md5: "eb5a983be6a315427106f1b164d9cef3")],
               unpackFolder: nil),
    ]

    public static var datasetNames: [String] { sources.map(\.name) }

    public static func source(named name: String) -> Source? { sources.first { $0.name == name } }

    /// Debian's `dataset-fashion-mnist` (0.0~git20200523.55506a9-1): the four files, gzipped by
    /// Debian. Content hashes computed with `zcat FILE | md5sum` and `| sha256sum` (60000 and
    /// 10000 images of 28×28, 47040016 / 60008 / 7840016 / 10008 bytes decompressed).
    public static let fashionMNISTDebian = LocalCopy(
        package: "dataset-fashion-mnist", folder: "/usr/share/datasets/fashion-mnist",
        contentMD5: ["train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                     "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
                     "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
                     "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965"],
        contentSHA256: ["train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"])
}
