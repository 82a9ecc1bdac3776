import Foundation
import JEMBackend

/// CIFAR-10 / CIFAR-100 binary batches: fixed-size records of label byte(s) then 3072 pixels
/// (1024 red, 1024 green, 1024 blue, each 32×32 row-major), i.e. already NCHW.
enum CIFARBinary {
    enum Variant: Sendable {
        case cifar10
        case cifar100

        var labelBytes: Int { self == .cifar10 ? 1 : 2 }
        var recordSize: Int { labelBytes + 3072 }
        var name: String { self == .cifar10 ? "CIFAR-10" : "CIFAR-100" }
    }

    static let cifar10Batches = (1...5).map { "data_batch_\($0).bin" }
    static let cifar10Test = "test_batch.bin"
    static let cifar100Train = "train.bin"
    static let cifar100Test = "test.bin"

    /// One batch file's records. For CIFAR-100, `coarse` picks the first label byte (20 classes)
    /// instead of the second (fine, 100 classes).
    static func parse(_ bytes: ArraySlice<UInt8>, file: String, variant: Variant, coarse: Bool = false) throws -> ImageSet {
        let record = variant.recordSize
        guard !bytes.isEmpty else {
            throw DataError(file, "empty file, expected \(variant.name) binary records of \(record) bytes")
        }
        guard bytes.count % record == 0 else {
            throw DataError(file, "size \(bytes.count) bytes is not a multiple of the \(record)-byte "
                            + "\(variant.name) record (truncated or not a \(variant.name) binary batch)")
        }
        let n = bytes.count / record
        let classes = variant == .cifar10 ? 10 : (coarse ? 20 : 100)
        var labels = [Int32](repeating: 0, count: n)
        var pixels = [UInt8](repeating: 0, count: n * 3072)
        try bytes.withUnsafeBufferPointer { src in
            try pixels.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n {
                    let r = i * record
                    if variant == .cifar100 {
                        let c = Int(src[r]), f = Int(src[r + 1])
                        guard c < 20 else { throw DataError(file, "record \(i): coarse label \(c), expected 0..<20") }
                        guard f < 100 else { throw DataError(file, "record \(i): fine label \(f), expected 0..<100") }
                        labels[i] = Int32(coarse ? c : f)
                    } else {
                        let l = Int(src[r])
                        guard l < classes else {
                            throw DataError(file, "record \(i): label \(l), expected 0..<\(classes) (CIFAR-10)")
                        }
                        labels[i] = Int32(l)
                    }
                    (dst.baseAddress! + i * 3072).update(from: src.baseAddress! + r + variant.labelBytes, count: 3072)
                }
            }
        }
        return ImageSet(channels: 3, height: 32, width: 32, count: n, pixels: .uint8(pixels), labels: labels)
    }

    static func concatenate(_ sets: [ImageSet]) -> ImageSet {
        var pixels = [UInt8](), labels = [Int32]()
        for s in sets {
            if case .uint8(let p) = s.pixels { pixels.append(contentsOf: p) }
            labels.append(contentsOf: s.labels ?? [])
        }
        return ImageSet(channels: 3, height: 32, width: 32, count: labels.count, pixels: .uint8(pixels), labels: labels)
    }

    /// Which variant a folder holds, if any.
    static func folderVariant(_ folder: String) -> Variant? {
        func has(_ n: String) -> Bool { DataFiles.kind(DataFiles.join(folder, n)) == .file }
        if cifar10Batches.contains(where: has) || has(cifar10Test) { return .cifar10 }
        if has(cifar100Train) || has(cifar100Test) { return .cifar100 }
        return nil
    }

    /// Files making up the training split: data_batch_1 … data_batch_k (no gaps).
    static func trainFiles(variant: Variant, exists: (String) -> Bool, container: String) throws -> [String] {
        if variant == .cifar100 {
            guard exists(cifar100Train) else {
                throw DataError(container, "missing \(cifar100Train) (CIFAR-100 binary: train.bin and test.bin)")
            }
            return [cifar100Train]
        }
        let present = cifar10Batches.map(exists)
        guard present[0] else {
            throw DataError(container, "missing data_batch_1.bin (CIFAR-10 binary: data_batch_1..5.bin, test_batch.bin)")
        }
        let k = present.firstIndex(of: false) ?? present.count
        if let later = present[k...].firstIndex(of: true) {
            throw DataError(container, "missing \(cifar10Batches[k]) while \(cifar10Batches[later]) is present")
        }
        return Array(cifar10Batches[0..<k])
    }

    struct Loaded {
        let variant: Variant
        let train: ImageSet
        let test: ImageSet?
        let classNames: [String]
    }

    static func loadFolder(_ folder: String, coarse: Bool) throws -> Loaded {
        guard let variant = folderVariant(folder) else {
            throw DataError(folder, "no CIFAR binary files (expected data_batch_1..5.bin/test_batch.bin or train.bin/test.bin)")
        }
        func path(_ n: String) -> String { DataFiles.join(folder, n) }
        func exists(_ n: String) -> Bool { DataFiles.kind(path(n)) == .file }
        func load(_ n: String) throws -> ImageSet {
            let p = path(n)
            return try parse(try DataFiles.read(p)[...], file: p, variant: variant, coarse: coarse)
        }
        let train = concatenate(try trainFiles(variant: variant, exists: exists, container: folder).map(load))
        let testName = variant == .cifar10 ? cifar10Test : cifar100Test
        let test = exists(testName) ? try load(testName) : nil
        let names = classNames(variant: variant, coarse: coarse) { n in
            exists(n) ? try? DataFiles.read(path(n)) : nil
        }
        return Loaded(variant: variant, train: train, test: test, classNames: names)
    }

    /// The official `cifar-10-binary.tar.gz` / `cifar-100-binary.tar.gz` (or the .tar).
    static func loadArchive(_ archive: TarArchive, coarse: Bool) throws -> Loaded {
        let file = archive.file
        func exists(_ n: String) -> Bool { archive.member(named: n) != nil }
        let variant: Variant
        if cifar10Batches.contains(where: exists) || exists(cifar10Test) {
            variant = .cifar10
        } else if exists(cifar100Train) || exists(cifar100Test) {
            variant = .cifar100
        } else {
            let listed = archive.members.prefix(5).map(\.name).joined(separator: ", ")
            throw DataError(file, "archive holds no CIFAR binary batches (expected data_batch_1.bin or train.bin; found "
                            + (listed.isEmpty ? "no files" : listed) + ")")
        }
        func load(_ n: String) throws -> ImageSet {
            let m = archive.member(named: n)!
            return try parse(archive.bytes[m.range], file: "\(file): \(m.name)", variant: variant, coarse: coarse)
        }
        let train = concatenate(try trainFiles(variant: variant, exists: exists, container: file).map(load))
        let testName = variant == .cifar10 ? cifar10Test : cifar100Test
        let test = exists(testName) ? try load(testName) : nil
        let names = classNames(variant: variant, coarse: coarse) { n in archive.member(named: n).map(archive.contents) }
        return Loaded(variant: variant, train: train, test: test, classNames: names)
    }

    /// Names from the metadata file when present and well-formed, else the official lists.
    static func classNames(variant: Variant, coarse: Bool, read: (String) -> [UInt8]?) -> [String] {
        let (file, fallback, count): (String, [String], Int) = switch variant {
        case .cifar10: ("batches.meta.txt", cifar10Names, 10)
        case .cifar100: coarse ? ("coarse_label_names.txt", cifar100CoarseNames, 20)
                               : ("fine_label_names.txt", cifar100FineNames, 100)
        }
        if let bytes = read(file) {
            let names = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if names.count == count { return names }
        }
        return fallback
    }

    static let cifar10Names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    static let cifar100FineNames = """
        apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly \
        camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup \
        dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower \
        leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid \
        otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road \
        rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower \
        sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale \
        willow_tree wolf woman worm
        """.split(separator: " ").map(String.init)

    static let cifar100CoarseNames = """
        aquatic_mammals fish flowers food_containers fruit_and_vegetables household_electrical_devices \
        household_furniture insects large_carnivores large_man-made_outdoor_things \
        large_natural_outdoor_scenes large_omnivores_and_herbivores medium_mammals \
        non-insect_invertebrates people reptiles small_mammals trees vehicles_1 vehicles_2
        """.split(separator: " ").map(String.init)
}
