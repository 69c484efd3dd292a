// SPDX-License-Identifier: Apache-2.0
// GENERATED from zkfl.field.poseidon (ROUND_CONSTANTS, MDS) by scripts/gen_poseidon_t2.py; do not edit by hand.
pragma solidity ^0.8.24;

/// @title PoseidonT2: zkfl.field.poseidon's Poseidon hash (ezkl's poseidon_hash) on chain.
/// @notice Width 2, rate 1, x^5, 8 full + 56 partial rounds over the BN254 scalar field
/// p = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001.
/// Sponge: the state [rate, capacity] starts at [0, 2**64]; each message element is added to the
/// rate word, then one permutation; the hash is the rate word. hash(m) == poseidon_commit(m).
/// Inputs >= p are reduced mod p, as poseidon_commit does ((s0 + v) % p): m[i] and m[i] + p hash
/// alike. absorb() reduces the state words it is given too. Every output is in [0, p).
/// @dev The permutation is an exact re-expression of poseidon.permute with fewer mulmods. Before
/// round r the code holds Y0 = t0*(s0 + c0_r) and Y1 = t1*s1 + o1 (s: the true state, c0_r: round
/// r's word-0 constant), with scales t0, t1 and offset o1 chosen per round so that every linear
/// layer but the last is Y0' = X0 + A*X1 + C, Y1' = X1 + B*Y0' (2 mulmods), where X0 = Y0^5 and
/// X1 = (Y1 + C1)^5 in a full round, X1 = Y1 in a partial round. The last round is dense and
/// yields the true state. A, B, C, C1 and the last round's matrix are derived from ROUND_CONSTANTS
/// and MDS. Plain `add`s are left unreduced where the sum provably stays below 2**256 (5p < 2**256);
/// mulmod and addmod reduce. The first permutation of hash() knows its capacity word (2**64), so its
/// round 0 raises one word to the 5th power only.
contract PoseidonT2 {
    uint256 internal constant P = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001;
    uint256 internal constant C00 = 0x09c46e9ec68e9bd4fe1faaba294cba38a71aa177534cdd1b6c7dc0dbd0abd7a7; // round 0's word-0 constant

    /// Poseidon hash of m (m.length >= 1), equal to zkfl.field.poseidon.poseidon_commit(m).
    /// Elements >= p are reduced mod p.
    function hash(uint256[] calldata m) external pure returns (uint256 h) {
        require(m.length != 0, "PoseidonT2: empty message");
        (h, ) = _sponge(0, 0, m, true);
    }

    /// Continue a sponge: absorb m into state (state = [rate, capacity]); the start state is
    /// [0, 2**64], and absorb([0, 2**64], m)[0] == hash(m). State words and elements >= p are
    /// reduced mod p; an empty m returns the reduced state.
    function absorb(uint256[2] calldata state, uint256[] calldata m) external pure returns (uint256[2] memory out) {
        (out[0], out[1]) = _sponge(state[0] % P, state[1] % P, m, false);
    }

    /// Absorb m into [s0, s1] (each < p); fresh: the state is [0, 2**64] and m is not empty.
    function _sponge(uint256 s0, uint256 s1, uint256[] calldata m, bool fresh)
        private
        pure
        returns (uint256 r0, uint256 r1)
    {
        assembly ("memory-safe") {
            // Rounds 1..63 of the permutation: y0 < 3p, y1 < 2p in; the true state (each word < 2p) out.
            function rest(y0, y1, p) -> o0, o1 {
                {
                    let q := mulmod(y0, y0, p)
                    let u := add(y1, 0x264065ad87572e016659626c33c8213f7a373b9b8225a384f458d850bb4a949f)
                    let v := mulmod(u, u, p)
                    let z := mulmod(mulmod(v, v, p), u, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x1a00d07f97ef014b187450505472b82d8b9504ddafd2b4351edc46d347484477), mulmod(z, 0x1d6483d43d216d699e973129e660d35095f6b873f35fe3ff893160903ce96dd7, p))
                    y1 := add(mulmod(y0, 0x11f20e7c772ce25c88556ce67a4e8bb69e4f38c148bbd71152cfe94bac6ebbde, p), z)
                }
                {
                    let q := mulmod(y0, y0, p)
                    let u := add(y1, 0x1d6edfc87270770b2ade42e1048a608b40a27b2c1009990199f76199d247c67e)
                    let v := mulmod(u, u, p)
                    let z := mulmod(mulmod(v, v, p), u, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x1af0cfb5d5c52326e514a4943353ec24f9b5b06fd8c59c80d403e231d4611356), mulmod(z, 0x1a191decd4e598cfa12112dc704a43c5bb5ad01cd912593bce0d3e7b7f51d328, p))
                    y1 := add(mulmod(y0, 0x1268cee54d53e38337cf57b31b8afa82c6f034d8177be6b8aad769b0e2b96178, p), z)
                }
                {
                    let q := mulmod(y0, y0, p)
                    let u := add(y1, 0x0b726404df8b171d25396aa1ee7ca87fc90963485ccf828ba87727feecdbaf31)
                    let v := mulmod(u, u, p)
                    let z := mulmod(mulmod(v, v, p), u, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x0325907a675bd7e91d56f193bb3f427bd9db3758c3394bad14fba0f45a321c76), mulmod(z, 0x1f8566bd4a8294cc1c7d74eae8669fcb7507901661b669e874a827262a65a3b3, p))
                    y1 := add(mulmod(y0, 0x2b95dbb43f03cd2f209601350181dca3f8c42c1e4ab0a17bf4013a6a04ec4484, p), z)
                }
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x146dd4b44a1ec1fc3b657e8a511981c6494d598e0bea413190e29a8406964df5), mulmod(y1, 0x1bf6ab4828d5edd8daa93b84179ba1903daf6441026b415fa354f3dfa73967b9, p))
                }
                y1 := add(mulmod(y0, 0x0e4da1c25c9e541b9b1036647e0bd1a729a03fb7d69a70b7b624a2cb8bb7c1ca, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x2f2542bacea6d03431a53b0799ac52ac0bd22e8bda155eed6aa422e81997664a), mulmod(y1, 0x1f557e10a4b1cfb23dea38cfbde2aa9ae543e367d4a648771dea30c61fdab385, p))
                }
                y1 := add(mulmod(y0, 0x086942f47b7f69b362f97f20d0bb955f5b6dec53c1882cb48ab5c5f50c5c3de2, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x10040c5fe707a778be180a465f9c1ee9db7929f079250f8cd628294e53a99204), mulmod(y1, 0x09e8b0f8a69cc150a8a083d15eb5f7bf4b3b6b5d02d535e55356594e559d74ef, p))
                }
                y1 := add(mulmod(y0, 0x06b1978508b201e0f0bd9adb01e5744c903881b8a3307e1c6af9b589e7129b97, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x143c64657c4309a0c12f880560e0bb65ff7477ff4367833a503ce7c55ff3117f), mulmod(y1, 0x2ace0b48de37671c88e3644880e4ea7dc7bbe4504a211666adf4109fd545c0da, p))
                }
                y1 := addmod(mulmod(y0, 0x1109b84871d9bf7d7271b6c64ff5c99a34239a9b8e582cbe4301879772aa6f24, p), y1, p)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x01954bf280cf46922612700ca5b08a0dddee5c67272af5844451f63a68ed20b7), mulmod(y1, 0x2a720d0da104b06b7fababc85002f46cf2ca766300adb36d7fd56a17d18e4733, p))
                }
                y1 := add(mulmod(y0, 0x09d3deea9b1c7dcc3094fd107f5838f11e8cf6a3996a4602d0046e6cf7166ce0, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x190edbf9abd325679ee2ff988e0021546f07717abcecb03995283295b39f6f5d), mulmod(y1, 0x136cc1ef2931e2c95a26b9d3ff2ee41ae796f8fb8e1eafb078736b6cec833379, p))
                }
                y1 := add(mulmod(y0, 0x1732e0e76e52320c61a563761273de6181ed98ace4341de482321a43af6b6122, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x270c9a92a270385610a9bc34ca2e386bdd60a54905083fb86f1a8a6e3b0b441f), mulmod(y1, 0x01d0f0001f6696ec6efe590eda90ba4dca8398510a6505f5ee3cc4cf9c1449a6, p))
                }
                y1 := add(mulmod(y0, 0x200a8eff22d0af9af512650f5dc211091a485f16de14c96888020026e43277c4, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x2bf9a8ad8cb561c20e175957be3b6dc9ac56772f3898b9abb3c6ae77955930ca), mulmod(y1, 0x1f9e0f28a30dbc8f811a6b8c16743e06636c4ed53ebbca23ea04159d7de6607c, p))
                }
                y1 := add(mulmod(y0, 0x11ed58489c78713a61a1b767f5e5c13ee25a2ea5e7a9af35a8f331eb03ed4444, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x279f7236f2d929629676a526fa539111b5f861a0e7c115c5d3eef6473dcc0d13), mulmod(y1, 0x26ecc2723b52958a341d721585caf8c75688914604bdd031857a1bada77ac7b9, p))
                }
                y1 := addmod(mulmod(y0, 0x0716ba27b52986932b716a398d6e5d9b61524bfe5856e80aa8a062686e8b9d8e, p), y1, p)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x2d80d1365275a4d6ae4ccdcca74ce9d5efc5282dbc0508b1c9b4eb615dd93ed4), mulmod(y1, 0x029eb238ff4ff304357bf7da3af6bf7c94d022b9184f2b97955dbfbb7f10c34b, p))
                }
                y1 := add(mulmod(y0, 0x128ebd63ed3de8b7dee5f7261c85f5ec1cbdb0911dda1024552a2e0452c61f6b, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x16478f2d69864e92ca7bbf10d2cc7f34dcea0d49abcc84aa1cfba2ef5ba7fff6), mulmod(y1, 0x23bea24427c910669fb2442d7206b3dabe002ea774b42c5bdfccee9b250e3b5e, p))
                }
                y1 := add(mulmod(y0, 0x186fd9525d2d5edc63744f1c20bef249810a22526ffa359caca5ea17d98b6615, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x1e604b43d9230778cabfa0fad5fdc55e3b874cba2e00ac74a4a4ef7bb3c56b7f), mulmod(y1, 0x110c45b84ac1d340be24ba5967271a15b3753a63858eb6da6b759e3d29668fdb, p))
                }
                y1 := add(mulmod(y0, 0x1875c827f0fbe6b817d0af7495a412c9d296f1cbc796c3e45f7491711bff092f, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x1c52d530cb64ca4dcb9d863cc83272a74db2ec2eafc740f985d6f0df1e6b1ef3), mulmod(y1, 0x1d400e44f23b482b4f5bd924bc56e76ab1cb4438c8c77676719a6e92caf484c4, p))
                }
                y1 := add(mulmod(y0, 0x0f8e8b442553d593fcac7c5b538fc5377a0511660835c9ae4190ef72507d3e6f, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x0e76f9dce6971919b92bb39217185c742f6a8b056e2f8f22d73dd6543da48cc4), mulmod(y1, 0x251efa7e125250caff837257bf788b4613b9cccca16ea0e794208077f118d675, p))
                }
                y1 := addmod(mulmod(y0, 0x0707cefd30b87824888413896e8fee0761e17b112c184f43050e30ad962e6b4b, p), y1, p)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x2306ed54fe09e44a47ef4d87ca416a926d3ec0257ee5bb66951178bba806a960), mulmod(y1, 0x203e015d4a5d0486ff6ffec470cd9b2fb65ce561c57a5a91df0a44008f757673, p))
                }
                y1 := add(mulmod(y0, 0x1f6c1a34a2db42e5e2a861333ab6083153c30ca75a43de6c1f74e56946ec230a, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x1e650911d88bde3afad95b3234c97dffcb550aa8666d06e4348b72f00267febb), mulmod(y1, 0x1394368ebd2f85844751d4b4053cbb55ca7958a700c90ca99f734471eeefeb00, p))
                }
                y1 := add(mulmod(y0, 0x0abd21f8c94f009451cd547f9f729f690ebcb22b1551038e783e65c3c07723ef, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x2da26f994cf51ed38e1c0895f748bf9f2715eb397a638dafdb3241c66b63165e), mulmod(y1, 0x1300aa012fe32a8bfa027587400b83b8a809956bdad3a6f946832749a70f7b97, p))
                }
                y1 := add(mulmod(y0, 0x0ce840b15f583dab11157e4bc69903b32882f8a28f28d7bc98eee84c8e05d295, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x0cc358101b2871a9c90931e78545fbb3a0bc7307045dedc731a976f9af1d591b), mulmod(y1, 0x07a74ef3c01a345b2817f68ade7f9fc78a3fa50091ce41b0b20352e51cace267, p))
                }
                y1 := add(mulmod(y0, 0x15275608ec8ef2df6aabd14c664a691e1189cd274a2036d97ebd40f3d7032c5e, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x0000631484cd19bb0bb61be4a196dfb626c446f6720b3ea356e37a7b5846d5e5), mulmod(y1, 0x16e990ba24f474645408f10c93012e3870e7756dd2b2eea6eaa191fb03be9854, p))
                }
                y1 := addmod(mulmod(y0, 0x1300043cb550d1d94ac4f197b79d9f28b2a2487e2e22377fced8ce57d6c3809c, p), y1, p)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x1ee43662c34a67856a21e13c093d2af591858bc0d832bc1d91c3054f7d3e350b), mulmod(y1, 0x27302809a359c29c1addddfc54367ef10169b6e77f36713c7109eb88569cd2bc, p))
                }
                y1 := add(mulmod(y0, 0x2a242361787bfbc911a4121014a1f07433e9c4479cec42ebc08f8b35cca977f5, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x03d1dd20ac98b4058b6d138fd39be16379c971b0690e6ebfb6a7952cf48c23c4), mulmod(y1, 0x15d956708f2f9379dde8b2429ed51915bd9e6fa5804bb37f143b15adedc79b3e, p))
                }
                y1 := add(mulmod(y0, 0x2950c2f775ac448a9a5e13765e428ac611a6d1bab5a7cfdb6762f8059dc57870, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x05f602bebf639d25d32584240f3b222017521b400a36b811c80cc7a53b720885), mulmod(y1, 0x2808c9c91544b500fcb4661006dd78ab5f1cc59020d11569c9b7f702b0c2d21a, p))
                }
                y1 := add(mulmod(y0, 0x04e740e78ba1f04130cf733780e08f1d264f02ee19a09b878279c0c96bc0bd48, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x03a62ac7ab305c408dced063dc9ebe81cf55a39e61b2fdd8ac14130d407a630b), mulmod(y1, 0x2616796a2b77598b788be67e567660d0ecacfbb84fd76ed3a8c6e3558eb28ea8, p))
                }
                y1 := add(mulmod(y0, 0x20f54c5b4be6f28e070fae11cc7c350a8436406d9430d4b96f7a28304796ed29, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x2c891246c5ef7c7ec5940512a6fb4544ef2fad2412d0e2a103444d1e192a94b7), mulmod(y1, 0x30461d24ec4664b684ff338b5dacda9ec69a5fc731086907663fa38b2b5f7ec8, p))
                }
                y1 := addmod(mulmod(y0, 0x2dfb72bb437102d640dc8a28aee1b7992367cf041f5a13a985d0d78e025f9c04, p), y1, p)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x251be7299134d3b45e7ff2901e183940581e4882f670d95b089260dacfb3bbc9), mulmod(y1, 0x2817692414c9e7b450edbd659738270d4c754e703af1711f79233f1e3b53d720, p))
                }
                y1 := add(mulmod(y0, 0x1834b996c07602f60c1c83c5709890360c86a8d547507561d4e24df9fdcd5cd6, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x10c01dc77d32c6bbcee425850979947e38900eeca8842a26e77bde545f54f5a4), mulmod(y1, 0x0eca45a31b00e33c02cc4a56c13303f2a3293113cf23cdb9bf55b3d63e3389b2, p))
                }
                y1 := add(mulmod(y0, 0x2f33ef832c585e5bd7d3a265f3a47650e5046640868c895af607e428f540916d, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x0ee54a0685983e36c1bb5517f7ed6418c785a48ab90c3246b7fce35c63dc2b2a), mulmod(y1, 0x15704f3b25e67ef8b96693d48429c89b26f16439ba12cdb7c8c50ffdae356b83, p))
                }
                y1 := add(mulmod(y0, 0x14567db5588ad7f4689467ca511720e2810ecdc140506acde8945e9aedf879c3, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x2bdfba59457eee30017566c2f2bf76d5f1c6d944a482a5946bade6eb08511e5e), mulmod(y1, 0x0c864bfbed8070e3874010646792c93a0ca2da78956c86811dd21e5522482dee, p))
                }
                y1 := add(mulmod(y0, 0x2609bd273a22fc82abb397838da84dc53b449144cb37a046e87190cf023dff73, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x0f9bc3367c5588de98e4e16c5ce87677e2e66e600211bf4a3e9cae95dd023b89), mulmod(y1, 0x26fd95414388324e9e369c4f15b32c71be06a7aec6c5970f2a11e7905b3a65a3, p))
                }
                y1 := addmod(mulmod(y0, 0x09e4f8f667d821975dd34d8d744ead5b28a30efba71d752b3d4542912bec169b, p), y1, p)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x29e4a1b0ef057a0c41ef1c86b74ba1adc2f383a9d19e5d5f0aff31772dc21555), mulmod(y1, 0x0932e4ef2ceb1957278a5a931d6f5753082bfc42e242d9e6e96b8a330043bb84, p))
                }
                y1 := add(mulmod(y0, 0x0b590645607ad07f848805b285725407fc100609ea4f948976bdbb6a99376ca8, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x1e3b60d24faca963d490349a0bbd2f459a20ace519adf11dfffff3a64c02228c), mulmod(y1, 0x2d5d4c64b4d788cf5eca9564c2819dbad4966952f2b84396ce44ae40db8da6c6, p))
                }
                y1 := add(mulmod(y0, 0x12eca87cc5822fb9bf0aadf73d9967afae327864e43b2c816b9e60605471697e, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x1f269509c0473a1075b2f7f73a06cdcf0f460c5ceb6c7f484986dbf3f90f591f), mulmod(y1, 0x2402e37f7d4e01c309fbf4a29f79ac05697735fbb4d16a4db99e4c6f901557c7, p))
                }
                y1 := add(mulmod(y0, 0x2bdad727abf5c04ac74f5054a3dbdc779b05d4b1ccd063e00863991c58bd2fba, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x0351afaf04ed4c44a042e4d2d5a716c1b580b0d93ed0640d19e06a3ba7c844dd), mulmod(y1, 0x011c3759011cab5dfc6c958a1229cb2a15ab53b9b767e7a79cf14bb91144fd3f, p))
                }
                y1 := add(mulmod(y0, 0x2639d1eae9abd6f87057809730a61889b59f5f3dbea4f771f5772c9d7487e2c8, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x23cb5b3aa3f6dd9b77a276ea6c8ee08ce4efc40e3c0907a65c596fe5c069202c), mulmod(y1, 0x27a5bad5b245f162c1456bb31fd891366fce26fa7aa97fbc243d311a5afa74cb, p))
                }
                y1 := addmod(mulmod(y0, 0x2071e7d390c2a7b2280fb6d6864198c1ef43b826c2b67b0f6bace20397a6d3eb, p), y1, p)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x302b92ecb88a5157622267c95afcfc2cc1c466cdeda02eb3d44f6f2f497ce10e), mulmod(y1, 0x1ad10c70bdc8e80d0df665e6263799878031273427b1a36284f0d0ac158e14c2, p))
                }
                y1 := add(mulmod(y0, 0x22ef97931086e4bb39189dacd85df3d75df9f2bc7293fe6cb4ca07b7b25ff177, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x1b9b5e87d164d135493e5c9addaa94478c39825dead9a8b0020b720d32ebc129), mulmod(y1, 0x2c922721f8159b2095d90ab67e890664333c8d0420be75c9aeadb89db07a108b, p))
                }
                y1 := add(mulmod(y0, 0x016aa5e6598bf953234e3d405f08c7e136e59a66527d6615af89168fa4b587cb, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x1957738877d5f475d8e50219a1ba97dbba6f6d7c4f124e3ed233bf6b1775048c), mulmod(y1, 0x1322e5a057e4292c27f361c4f0a0a47101ba95c38a6ae75262f7d44bba372605, p))
                }
                y1 := add(mulmod(y0, 0x1c007daccbc9e009bb66cbe68da8a5310b6befaa845877479744fcdd71a3e0b8, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x22cd58774d71031b15b3050e5e4a3fec2abd0386b0ba10fe29b9d09fee0855fb), mulmod(y1, 0x0a30a8aab77a6dad2744b8db56a1e366f33cc092a6116823e836eee3cf6111cb, p))
                }
                y1 := add(mulmod(y0, 0x1a8d60d72e388b3aa019befc837357e5b997347233755ce0f91f6a2f2ca3c2e7, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x2031c2e16425b37bab84594d147fe5df12b21fe80cd18f23da8da45c8c760f32), mulmod(y1, 0x001c4f003b46daa29e82c3b7be4791e943a001748a00b5ec35036f45c0be77bb, p))
                }
                y1 := addmod(mulmod(y0, 0x26f16b552526216cd6c239a5cac7f6a7388a92fb7540e49d6f968171932e956d, p), y1, p)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x21645b8e2f605b3f87be08fdee992b60a4f36d191a4801a3705a3de7092d4b25), mulmod(y1, 0x2d818fc3347e5366b449486485b5e90344e220baf43abc4cc7a886997a67fc08, p))
                }
                y1 := add(mulmod(y0, 0x1b0d03267dee7d866432ff39cb3e700ab94cba17d46d751a7d9d1b961a2b04f3, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x1be6447cffacc2b2c513a3a0c5dc3289790ded845af870ee66af24878131599d), mulmod(y1, 0x2cac3c89043bb7fa1884d99adb3eec19a5de7d49f0111d4ace0f55e1a122785d, p))
                }
                y1 := add(mulmod(y0, 0x0bc0ac0aa9ee8a110f447b4963b7f58e03db5dda74512b2e235f73be9bf684e0, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x0173ef8318c65dd1c05ea8ad5b3a4beeb8c8bd98f0b550cbd8be3f11e926b610), mulmod(y1, 0x03c9493e9f584f4ffefed197ae0058f81b7d50b3bd17cfe30ddbbc6ed52070a6, p))
                }
                y1 := add(mulmod(y0, 0x048dc4b979dbb85834a35757ace80c0841299831acc78d22eedc93953f0bf389, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x10fab34bbb046e64cc94e66638d6f31a527efcd3994414330f172ab3b10e3003), mulmod(y1, 0x192a362745fbb10b31bbaa5bc9edc647e2a1d57488fdfc84d92a5e3a54aba91e, p))
                }
                y1 := add(mulmod(y0, 0x142772754976759350bf92f7660fd9db355775757d4662ef59d28450ca5d2e2d, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x257d84158a78a11b12eaf2e0273dc55df17edca3825cd24e2fc5e0ea96455648), mulmod(y1, 0x13d1275661baccf44f855839034882f018d53371526b2e889c44106b013c095c, p))
                }
                y1 := addmod(mulmod(y0, 0x2fabd495d2ce92c3468fce8c39ac1b76275cfd3cae63cf5fb5c53865a93519a1, p), y1, p)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x19b04ecc8353cb665fc3f8f326f2dfe22350304f26f24dc862f8a0e37ebf6bd8), mulmod(y1, 0x02396aee97e21f287f2e1d3c65570a7cfb7ac6ba8817dc5271ee48d07c0bbd43, p))
                }
                y1 := add(mulmod(y0, 0x1a8b9738a301119202facbb55092f289615d80c9c28914f3941a14d94012a79e, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x0fb8c2d2eed55380589abfdeff2d233f9994d3518092456636068481e567ec84), mulmod(y1, 0x07339ab73b113026f9ea12966c5cd79f7202f4ddce5f260e0931227f6d532a0c, p))
                }
                y1 := add(mulmod(y0, 0x030a454512629ba32f68e864234e855fe50f8855afbd2093f11ba5ac89fef394, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x0947c6fcefbac58a0ec3b796bb1b2182bb721b08d433153de5069bfa08efd938), mulmod(y1, 0x22cde2d1d4cecddf9eb7ed72614c1897d630cc27f90cd6a688931017ea65b8c6, p))
                }
                y1 := add(mulmod(y0, 0x05bf21b2882fcba332842a0d73a1b23ca86be7f4bd247e292fcfa872054f8b83, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x18b1bd5726a851698742347558cbe4797cddae213cc13d2368b4be5eefbba366), mulmod(y1, 0x0ce1abc07144fe6f6c8f80e5db8af7c2c4501bf28287142189cddc32b73bb28e, p))
                }
                y1 := add(mulmod(y0, 0x13daeb21a9842b43e71a63246dc8ded4e7e059a7c7a8242894b7ba67b9d5c15c, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x19c3813544e67f792e79e3ad21d340ed6ff8ba15d67c50fc0bea13d9e03632db), mulmod(y1, 0x255c549d20a704e9bee018e9ce922b5800574e506a412501b54f464319740a56, p))
                }
                y1 := addmod(mulmod(y0, 0x25ff8cfcd96b9b0e900dd0f27acb13d8c09d2eca279ef5ff602eb1372d0e9180, p), y1, p)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x2a5cc296d19faac41ff80dc77ac896c499a41ae2ee5a222ae6936b61f5a03334), mulmod(y1, 0x2f4c2e602011c135fde6a207ca2dd2e5f3124f85c65335b15492d009326ed360, p))
                }
                y1 := add(mulmod(y0, 0x204321b1eda5e283769643a6a7db2463322b00a29d2ee0b8e7599528faf9b77f, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x19ed892fb5da04d3790abaccca7e313c2bffef7d9b7a79cae7b65384cf8ab338), mulmod(y1, 0x09c8269919306e8d05caf10030ad368c51a5fc9a2c09462483f10e59134dbb4a, p))
                }
                y1 := add(mulmod(y0, 0x25b5b9091d03ad3428827f5d82bd5871e7c4eb7f587761acd3e1d009b9a0ebd8, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x0a7b6aea412db7f46615038c797a041b048d94b8d46ffed3162ae35a92306675), mulmod(y1, 0x2ef607bc8e71bfd7bc7e77d5d1603658cee94f334046c695e3020ece5a2d3c65, p))
                }
                y1 := add(mulmod(y0, 0x25d00676be5c80f5f009cb560c97711e23b4e5ce6bc6af1bf18d5833980bca42, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x0f8d350bdb6ed2658be91f596bceab638d67050a6ce3b9f8558b046671440f73), mulmod(y1, 0x170c4efbbbd4a377ff786241a8fbc81e4168d86d960d88cfec096fee00072414, p))
                }
                y1 := add(mulmod(y0, 0x229f87af3fc6b7d271569b85833745887b18828e258b06e122f72815f17d964b, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x0120430d33631e418c48a8d0921072822f94054ceff4dff34187f356a1feb5b4), mulmod(y1, 0x1755275dc5f3ce2844aea41d3e043995f4dc1cde1cf29f58822e630a9a2e3fd4, p))
                }
                y1 := addmod(mulmod(y0, 0x04a5a708a414b29489a20083e6898db90f943689cde9ea493d8c2af9c39a8432, p), y1, p)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x2c5dc738135fed895360453cf82fbcf57050781f1c9c3a397a786bcac14dbcbf), mulmod(y1, 0x02feac7cd533e90ebb20954979a8385efe1bef71cd46f4ac896f9b5173b30dac, p))
                }
                y1 := add(mulmod(y0, 0x2036d4ffc976c006de98b911c6a0358aa1b5c5ec7028345c6bb5f7c555806e60, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x1e4f9ba698003d8814b65221cb1d757ce07172e07250386387e5ecd39d98f58f), mulmod(y1, 0x1317a97f142df03cb01f7aa07d974e794a36c7871263e0b1b59acadce80ff17a, p))
                }
                y1 := add(mulmod(y0, 0x14153a12b4ad580b8f881a941fb1bd4c20c7a29c17ffe6ac03cf21377ae853fb, p), y1)
                {
                    let q := mulmod(y0, y0, p)
                    let u := add(y1, 0x191de4dc7974e129e2893666c8713dba50dd2bb571db92978e7c2bc282d98f69)
                    let v := mulmod(u, u, p)
                    let z := mulmod(mulmod(v, v, p), u, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x08e99e9f65e8d90f80a5fa31d98292b58fa0f260ef447336a0b1c16a94d2da34), mulmod(z, 0x220843c4166b3445cc80ed8611708bc75e476859a17bfac7bc9720fea9af0334, p))
                    y1 := add(mulmod(y0, 0x20f3594a0771b134059ff8de66c4cfa673d0d9a747377ecdb10e8064e5bc5f32, p), z)
                }
                {
                    let q := mulmod(y0, y0, p)
                    let u := add(y1, 0x120cdb41a35e646841c00bef54b2bb7f771f519568b7920060f0c3e873cd2d5e)
                    let v := mulmod(u, u, p)
                    let z := mulmod(mulmod(v, v, p), u, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x2ac64d2e8e907e0a9133592cafa3d364496b125b60051c7ee1a7a62123c88bae), mulmod(z, 0x13661fbc30458f445468adccdd31e0692cf2dc6d0c91f9bcc18d32ef358be241, p))
                    y1 := add(mulmod(y0, 0x0a5e5d49d691f173803aa01fe3b2b097914327ddeef539d34d52beb4ca842c3d, p), z)
                }
                {
                    let q := mulmod(y0, y0, p)
                    let u := add(y1, 0x0093ec15a9f784b4f7e85ce473b8053cc59e3e75846b1f9c1a4119849740169e)
                    let v := mulmod(u, u, p)
                    let z := mulmod(mulmod(v, v, p), u, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x2f0fc6f22449345969914ce32087b571c2cd783e50af93456b7866709b41894a), mulmod(z, 0x0a3bef4611e13dd15240c9ac57c5a15de7a4ad086d421e128319e554d3f40272, p))
                    y1 := add(mulmod(y0, 0x29f45b751133edeb7cef5c830c49d9a0fa26edf2b7d5011a8f7c722128c015c6, p), z)
                }
                {
                    let q := mulmod(y0, y0, p)
                    let u := add(y1, 0x0b2301c0f42090aa1057fd12bdb858ecb39c3d77be3f3c042ac36c4c9108d523)
                    let v := mulmod(u, u, p)
                    let z := mulmod(mulmod(v, v, p), u, p)
                    let x := mulmod(mulmod(q, q, p), y0, p)
                    y0 := add(mulmod(x, 0x111779982879bcea2ebbfdb451a82e691ca063baca6ac59165c63057be3e1844, p), mulmod(z, 0x179378e38ee5e4a163df8efcfe03c5e1da0abf3e67570481c7fe4371fb7a6d83, p))
                    y1 := add(mulmod(x, 0x0d7b311ee0a5da00889ab14bfe88bd15c87697186d7834308fa5620042c403b3, p), mulmod(z, 0x22d5b485d1e95c711a211202f070c2165b024e1227065dacc554005d42460a2c, p))
                }
                o0 := y0
                o1 := y1
            }
            // The permutation of [y0 - C00, y1] (y0 < 2p: the rate word plus round 0's constant, y1 < 2p).
            function perm(y0, y1, p) -> o0, o1 {
                {
                    let q := mulmod(y0, y0, p)
                    let u := add(y1, 0x0c0356530896eec42a97ed937f3135cfc5142b3ae405b8343c1d83ffa604cb81)
                    let v := mulmod(u, u, p)
                    let z := mulmod(mulmod(v, v, p), u, p)
                    y0 := add(add(mulmod(mulmod(q, q, p), y0, p), 0x1d997ed1afba9d5e675d9c48f4577aa734871254c1bb06da88b93559dcebe825), mulmod(z, 0x159d4c3da48aec46411c3c286120bb79f30cd415ebb524a72b81b1b7afded159, p))
                    y1 := add(mulmod(y0, 0x0492bb334e7f53377ae13516e74b14b5c2433583a49ae82bf1cc36a70ba66c59, p), z)
                }
                o0, o1 := rest(y0, y1, p)
            }
            // The permutation of [y0 - C00, 2**64] (the hash's first), with round 0's word-1 power a constant.
            function permFirst(y0, p) -> o0, o1 {
                let y1 := 0
                {
                    let q := mulmod(y0, y0, p)
                    y0 := add(mulmod(mulmod(q, q, p), y0, p), 0x1bcf8fbbc7436fa0c3abe35d0ac359b50d28da3545b07a2a9046212c60f3fd0a)
                    y1 := add(mulmod(y0, 0x0492bb334e7f53377ae13516e74b14b5c2433583a49ae82bf1cc36a70ba66c59, p), 0x05b0ba18b16ba09d7363de81974d7428c6390d8a5046ab57c8714e353ec06e50)
                }
                o0, o1 := rest(y0, y1, p)
            }
            let p := P
            let ptr := m.offset
            let end := add(ptr, shl(5, m.length))
            if fresh {
                s0, s1 := permFirst(add(mod(calldataload(ptr), p), C00), p)
                ptr := add(ptr, 0x20)
            }
            for {} lt(ptr, end) { ptr := add(ptr, 0x20) } {
                s0, s1 := perm(add(addmod(s0, calldataload(ptr), p), C00), s1, p)
            }
            r0 := mod(s0, p)
            r1 := mod(s1, p)
        }
    }
}
