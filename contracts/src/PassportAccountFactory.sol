// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice A stand-in for Mezo Passport's account factory on a local chain: it answers,
/// as Mezo's does, where the smart account of a Bitcoin address's 20-byte payload is
/// deployed by CREATE2 (salt keccak256(payload), the account's bytecode hash).
contract PassportAccountFactory {
    bytes32 public immutable accountBytecodeHash;

    constructor(bytes32 accountBytecodeHash_) {
        accountBytecodeHash = accountBytecodeHash_;
    }

    function predictAddresses(bytes20 bitcoinPayload) external view returns (address account) {
        bytes32 salt = keccak256(abi.encodePacked(bitcoinPayload));
        return address(
            uint160(
                uint256(
                    keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, accountBytecodeHash))
                )
            )
        );
    }
}
