// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OwnerWallet} from "./OwnerWallet.sol";

/// @notice Deploys `OwnerWallet`s by CREATE2, so a wallet's address is known, and can
/// sign (ERC-6492), before it exists: what smart-account factories do.
contract OwnerWalletFactory {
    function deploy(address owner, bytes32 salt) external returns (address wallet) {
        address expected = walletAddress(owner, salt);
        if (expected.code.length > 0) {
            return expected;
        }
        return address(new OwnerWallet{salt: salt}(owner));
    }

    function walletAddress(address owner, bytes32 salt) public view returns (address) {
        bytes32 initCodeHash =
            keccak256(abi.encodePacked(type(OwnerWallet).creationCode, abi.encode(owner)));
        return address(
            uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, initCodeHash))))
        );
    }
}
