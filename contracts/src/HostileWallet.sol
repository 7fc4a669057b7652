// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice A contract "wallet" whose EIP-1271 `isValidSignature` misbehaves in the way
/// chosen at deployment: it loops until its gas runs out, it reverts, or it answers
/// three bytes where a word is due. No signature signs in to it; tests use it to show
/// that such a wallet costs the service one bounded call and counts against no node.
contract HostileWallet {
    uint8 public constant LOOP = 0;
    uint8 public constant REVERT = 1;
    uint8 public constant GARBAGE = 2;

    uint8 public immutable behaviour;

    constructor(uint8 behaviour_) {
        require(behaviour_ <= GARBAGE, "unknown behaviour");
        behaviour = behaviour_;
    }

    function isValidSignature(bytes32, bytes calldata) external view returns (bytes4) {
        if (behaviour == LOOP) {
            assembly {
                for {} 1 {} {}
            }
        }
        if (behaviour == REVERT) {
            revert("HostileWallet: never");
        }
        assembly {
            mstore(0, 0x1626ba7e00000000000000000000000000000000000000000000000000000000)
            return(0, 3)
        }
    }
}
