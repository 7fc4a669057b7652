// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

/// @notice ERC-6492's universal validator, for one deployless `eth_call`: the call's data
/// is this contract's creation code followed by abi.encode(signer, hash, signature), and
/// the constructor answers one byte, 1 when `signer` signed `hash`. Nothing is deployed,
/// so the wallet's factory runs only inside that call.
///
/// A signature ending in the magic suffix wraps abi.encode(factory, factoryCalldata,
/// innerSignature) for a wallet that may not exist yet: the factory is called when the
/// wallet has no code, or when its deployed code refuses (the wrapper may bring an
/// update), and then the wallet answers through EIP-1271. A wallet with code answers
/// through EIP-1271; any other signer must be the ECDSA signer of a 65-byte signature.
contract UniversalSignatureValidator {
    bytes32 private constant ERC6492_SUFFIX =
        0x6492649264926492649264926492649264926492649264926492649264926492;

    constructor(address signer, bytes32 hash, bytes memory signature) {
        bool valid = isValidSignature(signer, hash, signature);
        assembly {
            mstore(0, valid)
            return(31, 1)
        }
    }

    function isValidSignature(address signer, bytes32 hash, bytes memory signature)
        private
        returns (bool)
    {
        if (isWrapped(signature)) {
            // Drop the suffix in place: the rest is the ABI-encoded wrapper.
            assembly {
                mstore(signature, sub(mload(signature), 32))
            }
            (address factory, bytes memory factoryCalldata, bytes memory inner) =
                abi.decode(signature, (address, bytes, bytes));
            if (signer.code.length > 0 && acceptedByWallet(signer, hash, inner)) {
                return true;
            }
            (bool deployed,) = factory.call(factoryCalldata);
            return deployed && signer.code.length > 0 && acceptedByWallet(signer, hash, inner);
        }
        if (signer.code.length > 0) {
            return acceptedByWallet(signer, hash, signature);
        }
        return recoveredSigner(hash, signature) == signer && signer != address(0);
    }

    function isWrapped(bytes memory signature) private pure returns (bool wrapped) {
        if (signature.length < 32) {
            return false;
        }
        bytes32 tail;
        assembly {
            tail := mload(add(signature, mload(signature)))
        }
        return tail == ERC6492_SUFFIX;
    }

    function acceptedByWallet(address wallet, bytes32 hash, bytes memory signature)
        private
        view
        returns (bool)
    {
        // A low-level call: a wallet that reverts, or answers in another shape, says no
        // instead of reverting the whole validation.
        (bool answered, bytes memory answer) =
            wallet.staticcall(abi.encodeCall(IERC1271.isValidSignature, (hash, signature)));
        return answered && answer.length >= 32
            && bytes4(answer) == IERC1271.isValidSignature.selector;
    }

    function recoveredSigner(bytes32 hash, bytes memory signature)
        private
        pure
        returns (address)
    {
        if (signature.length != 65) {
            return address(0);
        }
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(signature, 32))
            s := mload(add(signature, 64))
            v := byte(0, mload(add(signature, 96)))
        }
        return ecrecover(hash, v < 27 ? v + 27 : v, r, s);
    }
}
